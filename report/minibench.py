"""ExecuTorch's benchmark app ("minibench") ``benchmark_results.json`` -> latency-report v1.

The app keeps only summary metrics, so a converted report says so
(``results.summary_only``) instead of inventing what the file does not hold.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dotcom_mobile.model.errors import DotcomError

from .latency import parse_artifact_name, read_json, validate_report


MINIBENCH_METRICS = {
    "avg_inference_latency(ms)": "mean_ms",
    "trimmean_inference_latency(ms)": "trimmed_mean_ms",
    "model_load_time(ms)": "load_ms",
}


def is_minibench(data: Any) -> bool:
    """A minibench ``benchmark_results.json``: a list of BenchmarkMetric objects."""
    return isinstance(data, list) and bool(data) and all(isinstance(x, dict) and "benchmarkModel" in x and "metric" in x for x in data)


def convert_minibench(data: list[dict[str, Any]] | str | Path, *, source: str | None = None) -> list[dict[str, Any]]:
    """Convert ExecuTorch benchmark-app results into latency-report v1 dicts (one per model).

    The app writes a JSON list of ``{"benchmarkModel": {"name", "backend",
    "quantization"}, "metric", "actualValue", "targetValue", "deviceInfo": {"device",
    "arch", "os", "totalMem", "availMem"}}`` with metrics ``avg_inference_latency(ms)``,
    ``trimmean_inference_latency(ms)``, ``model_load_time(ms)``, ``load_status`` and
    ``ram_pss_usage(mb)`` (``extension/benchmark/android/.../minibench``: ModelRunner
    sorts the samples, averages all of them and the middle 80%, and writes only
    those two numbers). No per-iteration latencies, no percentiles, no protocol
    (the warm-up and iteration counts are intent extras, not in the file).

    So the converted report is marked ``results.summary_only``: ``latencies_ms`` is
    empty, ``mean_ms`` and ``trimmed_mean_ms`` (the app's trim, 10% from each end, is
    ours) are the file's, and percentiles, min, max and stddev are null rather than
    invented. ``ram_pss_usage(mb)`` is PSS after the run minus PSS before loading,
    recorded with ``memory_scope: increase``. A failed load (``load_status`` != 0)
    keeps its load time in the error text. The table shows such rows with the
    trimmed mean marked ``~`` in the p50 column.
    """
    if isinstance(data, (str, Path)):
        source = source or f"minibench:{Path(data).name}"
        name_for_errors = str(data)
        data = read_json(data)
    else:
        name_for_errors = source or "<minibench>"
    if not is_minibench(data):
        raise DotcomError(f"{name_for_errors}: field <root>: not a benchmark_results.json list of BenchmarkMetric objects")
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for i, entry in enumerate(data):
        bm = entry.get("benchmarkModel") or {}
        if not isinstance(bm, dict) or not bm.get("name"):
            raise DotcomError(f"{name_for_errors}: field [{i}].benchmarkModel.name: missing")
        key = (str(bm["name"]), str(bm.get("backend") or ""), str(bm.get("quantization") or ""))
        groups.setdefault(key, []).append(entry)
    reports = []
    for (name, backend, quant), entries in groups.items():
        metrics: dict[str, float] = {}
        for i, e in enumerate(entries):
            value = e.get("actualValue")
            if not isinstance(value, (int, float)):
                raise DotcomError(f"{name_for_errors}: field {e.get('metric')}.actualValue: expected a number, got {value!r}")
            metrics[str(e["metric"])] = float(value)
        dev = next((e.get("deviceInfo") for e in entries if isinstance(e.get("deviceInfo"), dict)), {}) or {}
        os_name = str(dev.get("os") or "unknown")
        platform = "ios" if re.search(r"ios|iphone|ipad", os_name + str(dev.get("device", "")), re.I) else "android"
        device = {
            "platform": platform,
            "os": os_name,
            "model": " ".join(str(x) for x in (dev.get("device"), dev.get("arch")) if x) or None,
            "cpu": None,
            "cores": None,
            "threads": 0,
            "governor": None,
            "cpu_freq_khz": None,
            "thermal_state": None,
            "memory_bytes": int(dev["totalMem"]) if isinstance(dev.get("totalMem"), (int, float)) and dev["totalMem"] > 0 else None,
        }
        parsed = parse_artifact_name(f"{name}_{backend}_{quant}") if backend and quant else parse_artifact_name(name)
        artifact = {
            "name": f"{name}_{backend}_{quant}.pte" if backend and quant else f"{name}.pte",
            "path": None,
            "backend": backend or parsed["backend"] or "unknown",
            "quantization": quant or parsed["quantization"] or "unknown",
            "sha256": None,
            "size_bytes": None,
            "model": name if name.startswith("dotcom_") else (parsed["model"] or name),
            "task": None,
            "input_shape": None,
            "params": None,
            "macs": None,
        }
        load_status = metrics.get("load_status", 0.0)
        mean = metrics.get("avg_inference_latency(ms)")
        trimmed = metrics.get("trimmean_inference_latency(ms)")
        load_ms = metrics.get("model_load_time(ms)")
        error = None
        if load_status != 0:
            error = f"minibench: load_status {int(load_status)} (the app could not load the model" + (
                f"; gave up after {load_ms:.1f} ms)" if load_ms is not None else ")")
        elif mean is None and trimmed is None:
            error = "minibench: no inference latency metric in the file"
        results = None
        if error is None:
            pss = metrics.get("ram_pss_usage(mb)")
            results = {
                "load_ms": load_ms if load_ms is not None and load_ms >= 0 else None,
                "first_inference_ms": None,
                "latencies_ms": [],
                "summary_only": True,
                "p50_ms": None, "p90_ms": None, "p99_ms": None,
                "mean_ms": mean, "trimmed_mean_ms": trimmed,
                "min_ms": None, "max_ms": None, "stddev_ms": None,
                "peak_memory_bytes": int(pss * 1024 * 1024) if pss is not None and pss >= 0 else None,
                "memory_scope": "increase" if pss is not None and pss >= 0 else None,
                "outputs_verified": None,
            }
        report = {
            "schema": "latency-report",
            "schema_version": 1,
            "artifact": artifact,
            "device": device,
            "runtime": {"runner": platform, "executorch_version": None, "version": None, "compute_unit": None},
            # The counts are intent extras the file does not keep (0: unknown); the clock is the app's.
            "protocol": {"warmup": 0, "iterations": 0, "repeats": 1, "input": "random", "cooldown_s": None,
                         "clock": "System.nanoTime"},
            "results": results,
            "delegation": None,
            "status": "ok" if error is None else "error",
            "error": error,
            "created_at": None,
            "source": f"{source or 'minibench'} (summary only: mean and trimmed mean, no per-iteration samples)",
        }
        reports.append(validate_report(report, source=f"{name_for_errors} ({name})"))
    return reports
