"""latency-report v1: build, validate and read benchmark reports.

Every runner (python, native, Android, iOS, eager and ONNX Runtime baselines) writes
the same file, ``report/schemas/latency-report.v1.schema.json``, so host and phone
numbers land in one table. This module is the single place that

* builds a report from raw per-iteration latencies (:func:`make_report`, statistics
  from :mod:`dotcom_mobile.report.stats`, never recomputed elsewhere),
* validates one (:func:`validate_report`), failing with the file and the field,
* describes an artifact from its bytes and its manifest (:func:`artifact_info`),
* names report files (:func:`report_filename`) and writes them atomically.

ExecuTorch benchmark-app ("minibench") files are converted by :mod:`.minibench`; a
mixed folder of reports, accuracy files and minibench results is read by :mod:`.collect`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from dotcom_mobile.model.errors import DotcomError

from .cpu import kind_problem
from .host import device_info
from .stats import summarize

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "latency-report.v1.schema.json"
RUNNERS = ("python", "native", "android", "ios", "coreml", "eager", "onnxruntime")
# <model>_<backend>_<quant>.pte, as export names its artifacts (and minibench parses names).
ARTIFACT_NAME = re.compile(r"^(?P<model>.+?)_(?P<backend>xnnpack|coreml|vulkan|qnn|mlpackage|portable|mps|eager|onnxruntime)_(?P<quant>fp32|fp16|q8|int8|[a-z0-9]+)$")


# --------------------------------------------------------------------------- schema


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The latency-report v1 JSON Schema shipped with the package."""
    return json.loads(SCHEMA_PATH.read_text())


def _field_path(error: Any) -> str:
    """``results.p50_ms`` style path of a jsonschema error (``<root>`` for the top)."""
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    text = ".".join(parts).replace(".[", "[")
    # A missing required key is reported on its parent: name the key itself.
    if error.validator == "required":
        m = re.match(r"'([^']+)' is a required property", error.message)
        if m:
            text = f"{text}.{m.group(1)}" if text else m.group(1)
    return text or "<root>"


def _short(message: str, limit: int = 160) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def validate_report(report: dict[str, Any] | str | Path, *, source: str | None = None) -> dict[str, Any]:
    """Check ``report`` (a dict or a JSON file) against latency-report v1 and return it.

    Raises :class:`DotcomError` with one line ``<file>: field <path>: <reason>`` so a
    user can fix the file without reading a traceback. Beyond the schema, a
    ``device.cpu_kind`` must be the kind its ``cpu_features`` derive (a hand-edited
    kind would put the number in another CPU's group).
    """
    import jsonschema

    name = source
    if isinstance(report, (str, Path)):
        path = Path(report)
        name = name or str(path)
        report = read_json(path)
    name = name or "<report>"
    if not isinstance(report, dict):
        raise DotcomError(f"{name}: field <root>: expected a JSON object, got {type(report).__name__}")
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(report), key=lambda e: (len(list(e.absolute_path)), e.message))
    if errors:
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        # best_match may descend into an allOf/if branch; name the deepest real field.
        raise DotcomError(f"{name}: field {_field_path(best)}: {_short(best.message)}")
    problem = kind_problem(report["device"])
    if problem:
        raise DotcomError(f"{name}: field device.cpu_kind: {problem}")
    return report


# --------------------------------------------------------------------------- files


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or malformed file is a one-line :class:`DotcomError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DotcomError(f"{p}: no such file") from None
    except UnicodeDecodeError:
        raise DotcomError(f"{p}: field <root>: not a JSON text file (it is not UTF-8)") from None
    except OSError as e:
        raise DotcomError(f"{p}: cannot read ({type(e).__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DotcomError(f"{p}: field <root>: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write JSON to a temp file in the same folder, then rename: never half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(p, (json.dumps(obj, indent=1) + "\n").encode())
    return p


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- artifacts


def find_manifest(artifact: str | Path) -> dict[str, Any] | None:
    """The manifest written beside ``artifact`` (``<stem>.json``), or None."""
    p = Path(artifact)
    candidate = p.with_suffix(".json")
    if not candidate.is_file():
        return None
    try:
        data = json.loads(candidate.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == "dotcom-mobile/manifest" else None


def parse_artifact_name(stem: str) -> dict[str, str | None]:
    """model/backend/quantization from ``<model>_<backend>_<quant>`` (None when it does not parse)."""
    m = ARTIFACT_NAME.match(stem)
    if not m:
        return {"model": None, "backend": None, "quantization": None}
    return {"model": m["model"], "backend": m["backend"], "quantization": m["quant"]}


@lru_cache(maxsize=32)
def model_cost(model: str, input_shape: tuple[int, ...], num_classes: int = 1000, task: str = "classify") -> tuple[int, int]:
    """(params, MACs) of one inference of ``model`` at ``input_shape``.

    Counted on a ``meta``-device copy (shapes only, instant) with the model room's
    ``flops.count_macs`` (conv + linear + attention matmuls; FlopCounterMode FLOPs / 2).
    The head is built with the artifact's class count: at 1000 vs 4 classes it is a
    fifth of Tiny's parameters.
    """
    from dotcom_mobile.model.flops import build_on_meta, count_macs

    net = build_on_meta(model, task, num_classes=int(num_classes))
    params = sum(p.numel() for p in net.parameters())
    return params, int(count_macs(net, (int(input_shape[-2]), int(input_shape[-1]))))


def delegation_from_pte(path: str | Path) -> dict[str, Any] | None:
    """Partitions and non-delegated operators read from the program itself.

    Used when no manifest sits beside the .pte: counts DelegateCall instructions
    (partitions) and the kernels that run outside any delegate. The number of nodes
    inside a delegate blob is not in the program, so ``fraction`` is left out.
    """
    try:
        from executorch.exir._serialize._program import deserialize_pte_binary

        pte = deserialize_pte_binary(Path(path).read_bytes())
    except Exception:  # noqa: BLE001 - a file the serializer cannot read: the runner says why
        return None
    program = getattr(pte, "program", pte)
    plans = [p for p in program.execution_plan if p.name == "forward"] or list(program.execution_plan)
    if not plans:
        return None
    plan = plans[0]
    partitions, ops = 0, {}
    for chain in plan.chains:
        for ins in chain.instructions:
            kind = type(ins.instr_args).__name__
            if kind == "DelegateCall":
                partitions += 1
            elif kind == "KernelCall":
                op = plan.operators[ins.instr_args.op_index]
                name = op.name + (f".{op.overload}" if op.overload and op.overload != "default" else "")
                ops[name] = ops.get(name, 0) + 1
    out: dict[str, Any] = {"partitions": partitions, "non_delegated_ops": ops}
    if partitions == 0:
        out.update(delegated_nodes=0, fraction=0.0)
    return out


def artifact_info(
    path: str | Path,
    *,
    manifest: dict[str, Any] | None = None,
    input_shape: Sequence[int] | None = None,
    with_cost: bool = True,
) -> dict[str, Any]:
    """The report's ``artifact`` object for a file, from its bytes and its manifest.

    Backend and quantization come from the manifest, else from the file name
    (``<model>_<backend>_<quant>``). Params and MACs are counted on the eager model
    when the model is known, so achieved GMAC/s can be shown next to every latency.
    """
    p = Path(path)
    manifest = manifest if manifest is not None else find_manifest(p)
    parsed = parse_artifact_name(p.stem)
    m = manifest or {}
    shape = list(input_shape) if input_shape else (m.get("input", {}).get("shape") if m else None)
    model = m.get("model") or parsed["model"]
    info: dict[str, Any] = {
        "name": p.name,
        "path": str(p.resolve()),
        "backend": m.get("backend") or parsed["backend"] or "unknown",
        "quantization": m.get("quantization") or parsed["quantization"] or "unknown",
        "sha256": sha256_file(p) if p.is_file() else None,
        "size_bytes": p.stat().st_size if p.is_file() else None,
        "model": model,
        "task": m.get("task") or ("classify" if model else None),
        "input_shape": [int(s) for s in shape] if shape else None,
        "params": None,
        "macs": None,
    }
    if with_cost and model and shape:
        try:
            params, macs = model_cost(model, tuple(int(s) for s in shape), int(m.get("num_classes") or 1000), info["task"] or "classify")
            info["params"], info["macs"] = params, macs
        except DotcomError:
            pass  # a model name we do not know (someone else's .pte): no cost, still a report
    return info


# --------------------------------------------------------------------------- build


def make_report(
    *,
    artifact: dict[str, Any],
    runner: str,
    threads: int | None,
    warmup: int,
    iterations: int,
    repeats: int,
    latencies_ms: Sequence[float] | None,
    load_ms: float | None = None,
    first_inference_ms: float | None = None,
    peak_memory_bytes: int | None = None,
    memory_scope: str | None = None,
    memory_before_load_bytes: int | None = None,
    delegation: dict[str, Any] | None = None,
    input_kind: str = "random",
    clock: str | None = "perf_counter_ns",
    cooldown_s: float | None = None,
    executorch_version: str | None = None,
    runtime_version: str | None = None,
    compute_unit: str | None = None,
    outputs_verified: bool | None = None,
    error: str | None = None,
    device: dict[str, Any] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """A validated latency-report v1 dict.

    ``latencies_ms`` are every timed iteration of every repeat, in order; the summary
    statistics are computed from them here. ``memory_scope`` says what
    ``peak_memory_bytes`` covers (see the schema: ``process``, ``in_process``,
    ``increase``). ``error`` (or no latencies) makes a
    ``status: error`` report with ``results`` null, so a failed run still leaves a
    trace in the table.
    """
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}")
    if executorch_version is None and runner in ("python", "native"):
        executorch_version = package_version("executorch")
    ok = error is None and bool(latencies_ms)
    results = None
    if ok:
        lat = [float(x) for x in latencies_ms]  # type: ignore[union-attr]
        results = {
            "load_ms": load_ms,
            "first_inference_ms": first_inference_ms,
            "latencies_ms": lat,
            **summarize(lat),
            "peak_memory_bytes": peak_memory_bytes,
            "outputs_verified": outputs_verified,
        }
        if memory_scope is not None:
            results["memory_scope"] = memory_scope
        if memory_before_load_bytes is not None:
            results["memory_before_load_bytes"] = int(memory_before_load_bytes)
    report = {
        "schema": "latency-report",
        "schema_version": 1,
        "artifact": artifact,
        "device": device if device is not None else device_info(threads),
        "runtime": {
            "runner": runner,
            "executorch_version": executorch_version,
            "version": runtime_version,
            "compute_unit": compute_unit,
        },
        "protocol": {
            "warmup": int(warmup),
            "iterations": int(iterations),
            "repeats": int(repeats),
            "input": input_kind,
            "cooldown_s": cooldown_s,
            "clock": clock,
        },
        "results": results,
        "delegation": delegation,
        "status": "ok" if ok else "error",
        "error": None if ok else (error or "no latency samples"),
        "created_at": utc_now(),
        "source": source,
    }
    return validate_report(report, source=f"{runner} report for {artifact.get('name')}")


def package_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (a report's runtime versions), None if absent."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def timed_in_turn(report: dict[str, Any]) -> bool:
    """True for a report timed in one process in turn with others (``protocol.in_turn_with``)."""
    return bool((report.get("protocol") or {}).get("in_turn_with"))


def mark_in_turn(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Writes into each of ``reports`` (timed together) the others' artifact names: ``protocol.in_turn_with``."""
    names = [r["artifact"]["name"] for r in reports]
    for i, report in enumerate(reports):
        report["protocol"]["in_turn_with"] = names[:i] + names[i + 1:]
    return reports


def report_filename(report: dict[str, Any]) -> str:
    """``<artifact-stem>__<runner>__t<threads>.json``, the one naming rule for report files.

    A report timed in turn with others (``protocol.in_turn_with``) is
    ``<stem>__<runner>-in-turn__t<threads>.json``: it sits beside the one timed alone.
    """
    stem = Path(report["artifact"]["name"]).stem
    runner = report["runtime"]["runner"]
    if timed_in_turn(report):
        runner += "-in-turn"
    threads = report["device"].get("threads")
    return f"{stem}__{runner}__t{threads if threads is not None else 0}.json"


# --------------------------------------------------------------------------- read


def is_summary_only(report: dict[str, Any]) -> bool:
    """True for converted reports that carry no per-iteration samples (minibench)."""
    res = report.get("results") or {}
    return report.get("status") == "ok" and (bool(res.get("summary_only")) or not res.get("latencies_ms"))


def headline_ms(report: dict[str, Any]) -> float | None:
    """The one latency to compare: p50, or the trimmed mean (else mean) of a summary-only report."""
    res = report.get("results") or {}
    for key in ("p50_ms", "trimmed_mean_ms", "mean_ms"):
        if res.get(key) is not None:
            return float(res[key])
    return None
