"""Measure issue 5's performance targets in one run and print the ratios with pass/fail.

For each variant at 256x256, batch 1, and each thread count:

====================================  ==========================================
target                                ratio (pass when)
====================================  ==========================================
int8 vs fp32 (ExecuTorch XNNPACK)     p50(q8) / p50(fp32), timed in turn <= 0.50
int8 vs PyTorch eager fp32            p50(q8) / p50(eager fp32)        <= 0.25
ExecuTorch fp32 vs ONNX Runtime fp32  p50(ET fp32) / p50(ORT fp32)     <= 1.00
ExecuTorch int8 vs ONNX Runtime int8  p50(ET q8) / p50(ORT int8 QDQ)   <= 1.00
native runner vs Python runner        p50(native) / p50(python)        in [0.90, 1.10]
====================================  ==========================================

The int8 row times both programs in turn in one process (``bench/in_turn.py``): on a
shared host the separate runs' ratio moved by 0.1-0.3 between runs, this one by under 0.1.
The int8 target depends on the CPU kind (issue 13, ``report/cpu.py``): where the CPU
has an int8 dot product (``x86-avx512-vnni``, ``x86-avx-vnni``, ``x86-amx``) int8 must
be at most 0.5x fp32; on ``x86-avx2`` and ``x86-avx512`` (no VNNI), which have none, at most 0.8x; other kinds have
no target yet. Every run ends with the int8/fp32 ratios grouped per CPU kind;
``--reports DIR`` prints that table alone from reports measured elsewhere (phones,
other hosts), without measuring anything.

Achieved GMAC/s is printed next to every latency. These are measurements, not
tests: on a shared machine they move with the load, so every report (with all its
samples) is kept in ``--out/reports`` and the table in ``--out/perf_targets.md``.

Artifacts are cached in ``--out`` (lowering four variants in two precisions takes a
while): an existing ``<model>_xnnpack_{fp32,q8}.pte`` is reused unless ``--rebuild``.

Usage::

    python -m dotcom_mobile.perf.perf_targets --models dotcom_tiny
    python -m dotcom_mobile.perf.perf_targets --threads 1,2 --iters 100 --out perf_out
    python -m dotcom_mobile.perf.perf_targets --reports reports/ phone_reports/
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dotcom_mobile.model.errors import DotcomError

SIZE = 256
#: int8/fp32 (ExecuTorch XNNPACK p50) bound per CPU kind; a kind not listed has no target.
INT8_TARGETS: dict[str, float] = {"x86-amx": 0.5, "x86-avx512-vnni": 0.5, "x86-avx-vnni": 0.5, "x86-avx2": 0.8,
                                   "x86-avx512": 0.8}  # AVX-512 without VNNI: no int8 dot product either
INT8_QUANTS = ("q8", "int8")
TARGETS: list[tuple[str, str, str, float, float]] = [
    # (name, numerator, denominator, low, high): pass when low <= num/den <= high.
    # The first row's bound is replaced by the CPU kind's (INT8_TARGETS) in evaluate().
    ("int8 <= 0.5x ET fp32", "et_q8", "et_fp32", 0.0, 0.5),
    ("int8 <= 0.25x eager fp32", "et_q8", "eager_fp32", 0.0, 0.25),
    ("ET fp32 <= ORT fp32", "et_fp32", "ort_fp32", 0.0, 1.0),
    ("ET int8 <= ORT int8", "et_q8", "ort_q8", 0.0, 1.0),
    ("native fp32 within 10% of python", "native_fp32", "et_fp32", 0.9, 1.1),
    ("native int8 within 10% of python", "native_q8", "et_q8", 0.9, 1.1),
]


@dataclass
class Args:
    models: list[str]
    threads: list[int]
    out: Path
    warmup: int
    iters: int
    repeats: int
    native: bool
    onnx: bool
    rebuild: bool
    num_calib: int
    reports: list[Path] | None = None
    dynamic: bool = False


def build_artifacts(model: str, out: Path, *, rebuild: bool = False, num_calib: int = 64,
                    dynamic: bool = False) -> tuple[Path, Path | None]:
    """fp32 and int8 XNNPACK .pte of ``model`` at 256x256 in ``out`` (cached; dynamic int8 in ``out/dynamic``)."""
    from dotcom_mobile.export.api import export_model

    fp32 = out / f"{model}_xnnpack_fp32.pte"
    q8_dir = out / "dynamic" if dynamic else out
    q8 = q8_dir / f"{model}_xnnpack_q8.pte"
    if rebuild or not (fp32.exists() and fp32.with_suffix(".json").exists()):
        fp32 = Path(export_model(model, target="xnnpack", input_size=SIZE, out_dir=out, progress=True)[0].path)
    if rebuild or not (q8.exists() and q8.with_suffix(".json").exists()):
        try:
            q8 = _build_q8(model, out, q8_dir, rebuild, num_calib, dynamic)
        except Exception as e:  # noqa: BLE001 - still measure fp32 and the baselines
            print(f"  int8 artifact failed ({type(e).__name__}: {e}); int8 targets not measured", file=sys.stderr)
            return fp32, None
    return fp32, q8


def _build_q8(model: str, out: Path, q8_dir: Path, rebuild: bool, num_calib: int, dynamic: bool) -> Path:
    """quantize (generated calibration images: latency does not depend on them) + export."""
    from dotcom_mobile.export.api import export_model

    pt2 = q8_dir / f"{model}_xnnpack_q8.pt2"
    if rebuild or not pt2.exists():
        from dotcom_mobile.quantize.api import quantize_model
        from dotcom_mobile.train.synthetic import make_shapes_dataset

        calib = out / "calib"
        if not (calib / "train").is_dir():
            make_shapes_dataset(calib, train_per_class=-(-num_calib // 4), val_per_class=1, size=SIZE)
        pt2 = Path(quantize_model(model, backend="xnnpack", calib=calib / "train", num_calib=num_calib,
                                  out_dir=q8_dir, input_size=SIZE, progress=True, dynamic=dynamic,
                                  per_layer=False).pt2_path)
    return Path(export_model(quantized=pt2, target="xnnpack", out_dir=q8_dir, progress=True)[0].path)


def _native_available() -> bool:
    try:
        from dotcom_mobile.bench import native  # noqa: F401
    except ImportError:
        return False
    return True


def measure(model: str, threads: int, fp32: Path, q8: Path | None, a: Args) -> dict[str, dict[str, Any]]:
    """Every runner's report for one (model, threads), keyed as in TARGETS."""
    from dotcom_mobile.bench import runners
    from dotcom_mobile.bench.isolate import run_isolated
    from dotcom_mobile.bench.suite import export_then_run_onnxruntime
    from dotcom_mobile.report.latency import report_filename, write_json_atomic

    # Each in a fresh process (bench/isolate.py): the same protocol, and peak memory
    # that is the run's own rather than this process's (it may just have lowered four models).
    kw = dict(warmup=a.warmup, iters=a.iters, repeats=a.repeats)
    spec = runners.spec_for(fp32)
    spec_q8 = runners.spec_for(fp32)
    spec_q8.quantization = "q8"
    jobs: dict[str, Callable[[], dict[str, Any]]] = {"et_fp32": lambda: run_isolated("run_python", fp32, threads, **kw)}
    if q8 is not None:
        jobs["et_q8"] = lambda: run_isolated("run_python", q8, threads, **kw)
    jobs["eager_fp32"] = lambda: run_isolated("run_eager", spec, threads, **kw)
    if a.onnx:
        jobs["ort_fp32"] = lambda: export_then_run_onnxruntime(run_isolated, spec, threads, a.out, kw)
        jobs["ort_q8"] = lambda: export_then_run_onnxruntime(run_isolated, spec_q8, threads, a.out, kw)
    if a.native and _native_available():
        from dotcom_mobile.bench import native

        for key, pte in (("native_fp32", fp32), ("native_q8", q8)):
            if pte is None:
                continue
            tmp = a.out / "reports" / f".{pte.stem}__native__t{threads}.tmp.json"
            jobs[key] = lambda pte=pte, tmp=tmp: native.run_native(
                pte, threads=threads, warmup=a.warmup, iters=a.iters, repeats=a.repeats, out_json=tmp)
    results: dict[str, dict[str, Any]] = {}
    for key, job in jobs.items():
        print(f"  {model} t{threads}: {key} ...", file=sys.stderr, flush=True)
        try:
            report = job()
        except DotcomError as e:
            print(f"  {key}: {e}", file=sys.stderr)
            continue
        write_json_atomic(a.out / "reports" / report_filename(report), report)
        results[key] = report
    for tmp in (a.out / "reports").glob(".*.tmp.json"):
        tmp.unlink(missing_ok=True)
    return results


def measure_pair(fp32: Path, q8: Path, threads: int, a: Args,
                 shape: tuple[int, ...] = (1, 3, SIZE, SIZE)) -> dict[str, float] | None:
    """ET fp32 and int8 called in turn in one fresh process (``bench/in_turn.py``).

    On a shared host one program's latency drifts by tens of percent between runs, so
    the int8 target reads this ratio, where the drift hits both programs alike.
    """
    from dotcom_mobile.bench.in_turn import time_in_child

    rounds = a.iters * a.repeats
    print(f"  t{threads}: et_fp32 and et_q8 in turn ...", file=sys.stderr, flush=True)
    try:
        f, q = time_in_child([fp32, q8], threads, list(shape), a.warmup, rounds)
    except DotcomError as e:
        print(f"  in turn: {e}", file=sys.stderr)
        return None
    return {"fp32_ms": f, "q8_ms": q, "ratio": q / f, "rounds": rounds}


def evaluate(results: dict[str, dict[str, Any]], pair: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The target rows: ratio of p50s and pass/fail.

    ``pass`` is None when a side was not measured (``ratio`` None too) or when the CPU
    kind has no int8 target (``high`` None, the ratio still shown). With ``pair`` (ET
    fp32 and int8 timed in turn, :func:`measure_pair`) the int8 row reads its ratio:
    the separate runs' ratio moves with the host's load between them.
    """
    kind = next((r["device"].get("cpu_kind") for r in results.values() if r["device"].get("cpu_kind")), None)
    rows = []
    for name, num, den, low, high in TARGETS:
        bound: float | None = high
        if (num, den) == ("et_q8", "et_fp32"):
            bound = INT8_TARGETS.get(kind or "")
            name = f"int8 <= {bound:g}x ET fp32" if bound is not None else "int8 vs ET fp32"
            name += f" ({kind or 'unknown cpu kind'})"
        ratio = results[num]["results"]["p50_ms"] / results[den]["results"]["p50_ms"] \
            if num in results and den in results else None
        if (num, den) == ("et_q8", "et_fp32") and pair is not None:
            ratio, name = pair["ratio"], name + ", timed in turn"
        ok = None if ratio is None or bound is None else low <= ratio <= bound
        rows.append({"target": name, "ratio": ratio, "low": low, "high": bound, "pass": ok})
    return rows


def format_tables(all_results: dict[tuple[str, int], dict[str, dict[str, Any]]],
                  pairs: dict[tuple[str, int], dict[str, float]] | None = None) -> str:
    from dotcom_mobile.report.render import gmacs

    lines = []
    for (model, threads), results in all_results.items():
        pair = (pairs or {}).get((model, threads))
        lines.append(f"\n### {model}, {threads} thread(s), {SIZE}x{SIZE}, batch 1\n")
        lines.append("| runner | p50 ms | p90 ms | GMAC/s | delegated |")
        lines.append("|---|---|---|---|---|")
        for key, r in results.items():
            res, d = r["results"], r.get("delegation") or {}
            deleg = f"{d.get('partitions')}p" if d.get("partitions") is not None else "-"
            g = gmacs(r)
            lines.append(f"| {key} | {res['p50_ms']:.2f} | {res['p90_ms']:.2f} | {g:.1f} | {deleg} |" if g is not None
                         else f"| {key} | {res['p50_ms']:.2f} | {res['p90_ms']:.2f} | - | {deleg} |")
        if pair is not None:
            lines.append(f"\nET fp32 and int8 timed in turn, {pair['rounds']} calls each: p50 {pair['fp32_ms']:.2f} / "
                         f"{pair['q8_ms']:.2f} ms")
        lines.append("")
        lines.append("| target | ratio | bound | result |")
        lines.append("|---|---|---|---|")
        for row in evaluate(results, pair):
            bound = "no target" if row["high"] is None else (
                f"<= {row['high']}" if row["low"] == 0 else f"{row['low']}..{row['high']}")
            ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
            verdict = _verdict(row)
            lines.append(f"| {row['target']} | {ratio} | {bound} | {verdict} |")
    return "\n".join(lines)


def _verdict(row: dict[str, Any]) -> str:
    if row["ratio"] is None:
        return "not measured"
    if row["pass"] is None:
        return "no target"
    return "PASS" if row["pass"] else "FAIL"


def int8_ratios(reports: list[dict[str, Any]],
                in_turn: dict[tuple[str, str, int], dict[str, float]] | None = None) -> list[dict[str, Any]]:
    """int8/fp32 p50 of every (CPU kind, device, model, input, backend, runner, threads) measured in both.

    Pairs an fp32 report with an int8 (``q8``/``int8``) one of the same model, input
    shape, backend, runner and thread count on the same device; a newer report of a
    pair replaces an older one. Reports timed in turn (``bench --in-turn``) pair among
    themselves, runner ``<runner>, in turn``. Rows are sorted by CPU kind, so a table reads as one
    block per kind, each with its target (:data:`INT8_TARGETS`).

    ``in_turn`` (a live run's :func:`measure_pair` results by (device label, model,
    threads)) replaces the ``python`` rows' latencies of that device by the ones timed
    in turn, the runner reading ``python, in turn``: the per-target table reads that
    ratio, and the two tables of one run must not give one pair two verdicts. Keyed by
    device because the pair was timed on one host; other devices' rows keep their own.
    """
    from dotcom_mobile.report.latency import headline_ms
    from dotcom_mobile.report.render import device_label, runner_label

    pairs: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in sorted(reports, key=lambda r: r.get("created_at") or ""):
        a, quant = r["artifact"], r["artifact"].get("quantization")
        side = "fp32" if quant == "fp32" else ("int8" if quant in INT8_QUANTS else None)
        if side is None or r.get("status") != "ok" or headline_ms(r) is None:
            continue
        key = (r["device"].get("cpu_kind") or "unknown", device_label(r), a.get("model") or Path(a["name"]).stem,
               tuple(a.get("input_shape") or ()), a.get("backend"), runner_label(r), r["device"].get("threads"))
        pairs.setdefault(key, {})[side] = r
    rows = []
    for key in sorted(pairs, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        sides = pairs[key]
        if set(sides) != {"fp32", "int8"}:
            continue
        kind, device, model, shape, backend, runner, threads = key
        fp32, int8 = headline_ms(sides["fp32"]), headline_ms(sides["int8"])
        pair = (in_turn or {}).get((device, model, threads)) if runner == "python" else None
        if pair is not None:
            fp32, int8, runner = pair["fp32_ms"], pair["q8_ms"], "python, in turn"
        target = INT8_TARGETS.get(kind)
        ratio = int8 / fp32
        rows.append({"cpu_kind": kind, "device": device, "model": model, "input_shape": list(shape), "backend": backend,
                     "runner": runner, "threads": threads, "fp32_ms": fp32, "int8_ms": int8, "ratio": ratio,
                     "target": target, "pass": None if target is None else ratio <= target})
    return rows


def format_kind_table(rows: list[dict[str, Any]]) -> str:
    """The int8/fp32 ratios as one Markdown block per CPU kind, with that kind's target."""
    if not rows:
        return "\n### int8 / fp32 per CPU kind\n\nno fp32/int8 pair of reports on the same device, model and threads"
    lines = ["\n### int8 / fp32 per CPU kind"]
    for kind in dict.fromkeys(r["cpu_kind"] for r in rows):
        target = INT8_TARGETS.get(kind)
        lines += ["", f"#### {kind}: " + (f"target int8 <= {target:g}x fp32" if target is not None else "no target"), "",
                  "| device | model | input | runner | thr | fp32 ms | int8 ms | int8/fp32 | result |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["cpu_kind"] == kind):
            shape = "x".join(str(s) for s in r["input_shape"][-2:]) or "-"
            verdict = "no target" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL")
            lines.append(f"| {r['device']} | {r['model']} | {shape} | {r['runner']} | {r['threads']} | "
                         f"{r['fp32_ms']:.2f} | {r['int8_ms']:.2f} | {r['ratio']:.2f} | {verdict} |")
    return "\n".join(lines)


def from_reports(paths: list[Path]) -> int:
    """``--reports``: the per-kind table of reports already on disk; measures nothing."""
    from dotcom_mobile.report.collect import collect_inputs

    found = collect_inputs(paths)
    for path, why in found.invalid:
        print(f"skipped {path}: {why}", file=sys.stderr)
    print(format_kind_table(int8_ratios([r for _, r in found.reports])))
    return 0


def parse_args(argv: list[str] | None) -> Args:
    from dotcom_mobile.bench.suite import parse_threads
    from dotcom_mobile.model import list_models, resolve_model_name

    p = argparse.ArgumentParser(prog="python -m dotcom_mobile.perf.perf_targets", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(list_models()), help="comma-separated variants (default: all four)")
    p.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    p.add_argument("--out", type=Path, default=Path("dotcom_mobile_out/perf"), help="artifacts, reports and tables")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-native", dest="native", action="store_false", help="skip the native runner")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX Runtime baselines")
    p.add_argument("--rebuild", action="store_true", help="lower again even if artifacts exist in --out")
    p.add_argument("--num-calib", type=int, default=64, help="calibration images for int8 (generated shapes)")
    p.add_argument("--dynamic", action="store_true",
                   help="int8 = `quantize --dynamic` (run-time activation scales; artifacts in OUT/dynamic)")
    p.add_argument("--reports", type=Path, nargs="+", metavar="PATH", default=None,
                   help="measure nothing: print the int8/fp32 ratios per CPU kind of these reports (files or folders)")
    ns = p.parse_args(argv)
    if ns.reports:
        return Args([], [], ns.out, 0, 0, 0, False, False, False, 0, reports=ns.reports)
    models = [resolve_model_name(m) for m in ns.models.split(",") if m]
    return Args(models, parse_threads(ns.threads), ns.out, ns.warmup, ns.iters, ns.repeats, ns.native, ns.onnx,
                ns.rebuild, ns.num_calib, dynamic=ns.dynamic)


def main(argv: list[str] | None = None) -> int:
    from dotcom_mobile.report.latency import write_bytes_atomic, write_json_atomic
    from dotcom_mobile.report.render import device_label

    try:
        a = parse_args(argv)
        if a.reports:
            return from_reports(a.reports)
        a.out.mkdir(parents=True, exist_ok=True)
        all_results: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
        pairs: dict[tuple[str, int], dict[str, float]] = {}
        for model in a.models:
            print(f"{model}: artifacts", file=sys.stderr, flush=True)
            fp32, q8 = build_artifacts(model, a.out, rebuild=a.rebuild, num_calib=a.num_calib, dynamic=a.dynamic)
            for t in a.threads:
                all_results[(model, t)] = measure(model, t, fp32, q8, a)
                pair = measure_pair(fp32, q8, t, a) if q8 is not None else None
                if pair is not None:
                    pairs[(model, t)] = pair
    except DotcomError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    reports = [r for res in all_results.values() for r in res.values()]
    host = device_label(reports[0]) if reports else ""  # a live run measures this host only
    text = format_tables(all_results, pairs) + "\n" + format_kind_table(
        int8_ratios(reports, {(host, m, t): pair for (m, t), pair in pairs.items()}))
    print(text)
    summary = {f"{m}/t{t}": {"cpu_kind": next((r["device"].get("cpu_kind") for r in res.values()), None),
                             "p50_ms": {k: r["results"]["p50_ms"] for k, r in res.items()},
                             "in_turn": pairs.get((m, t)), "targets": evaluate(res, pairs.get((m, t)))}
               for (m, t), res in all_results.items()}
    write_json_atomic(a.out / "perf_targets.json", summary)
    write_bytes_atomic(a.out / "perf_targets.md", ("# Performance targets\n" + text + "\n").encode())
    print(f"\nwrote {a.out / 'perf_targets.md'} and {a.out / 'perf_targets.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from dotcom_mobile.export.noise import quiet_known_noise

    quiet_known_noise()  # as the CLI does: import-time library chatter unless DOTCOM_VERBOSE=1
    sys.exit(main())
