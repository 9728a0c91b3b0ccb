"""Time several ``.pte`` in one process, one call of each in turn: ratios that share the host's load.

On a shared host one artifact's latency drifts by tens of percent between runs
(``perf/README.md``), so two artifacts timed one after the other see different loads and
their ratio moves with it. Here every round calls each program once, the drift hits all of
them alike, and the p50 of each is printed with its ratio to the first artifact. One
process per thread count: XNNPACK's thread pool is sized before the first method loads.

Usage::

    python -m dotcom_mobile.perf.interleave fp32.pte static_q8.pte dynamic_q8.pte --threads 1,2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dotcom_mobile.model.errors import DotcomError


def input_shape(pte: Path) -> list[int]:
    """The input shape from the manifest beside ``pte`` (``export`` writes it)."""
    manifest = pte.with_suffix(".json")
    if not manifest.exists():
        raise SystemExit(f"Error: {manifest} not found: pass --shape N,C,H,W for artifacts without a manifest")
    return list(json.loads(manifest.read_text())["input"]["shape"])


def time_round_robin(paths: list[Path], threads: int, shape: list[int], warmup: int, rounds: int) -> list[float]:
    """p50 ms of each program over ``rounds`` rounds of one call each (call in this process first)."""
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    portable_lib._unsafe_reset_threadpool(threads)  # before any method loads
    methods = [Runtime.get().load_program(p).load_method("forward") for p in paths]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    for m in methods:
        for _ in range(warmup):
            m.execute([x])
    samples: list[list[float]] = [[] for _ in methods]
    for _ in range(rounds):
        for m, s in zip(methods, samples):
            t = time.perf_counter()
            m.execute([x])
            s.append((time.perf_counter() - t) * 1e3)
    return [statistics.median(s) for s in samples]


def time_in_child(paths: list[Path], threads: int, shape: list[int], warmup: int, rounds: int) -> list[float]:
    """:func:`time_round_robin` in a fresh process (its thread pool sized to ``threads``): p50 ms per program.

    Raises :class:`DotcomError` with the child's last error line when the timing fails.
    """
    cmd = [sys.executable, "-m", "dotcom_mobile.perf.interleave", *map(str, paths), "--child",
           "--threads", str(threads), "--rounds", str(rounds), "--warmup", str(warmup),
           "--shape", ",".join(map(str, shape))]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise DotcomError(f"timing at {threads} thread(s) failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dotcom_mobile.perf.interleave", description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", type=Path, nargs="+", help=".pte files; ratios are to the first")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (one process each)")
    p.add_argument("--rounds", type=int, default=50, help="timed calls of each program")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--shape", default=None, help="input shape N,C,H,W (default: the first artifact's manifest)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one thread count, JSON out
    a = p.parse_args(argv)
    missing = [str(f) for f in a.artifacts if not f.is_file()]
    if missing:
        print(f"Error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    shape = [int(s) for s in a.shape.split(",")] if a.shape else input_shape(a.artifacts[0])
    if a.child:
        print(json.dumps(time_round_robin(a.artifacts, int(a.threads), shape, a.warmup, a.rounds)))
        return 0
    rows = []
    for threads in [int(t) for t in a.threads.split(",") if t]:
        try:
            p50 = time_in_child(a.artifacts, threads, shape, a.warmup, a.rounds)
        except DotcomError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        rows += [(threads, f, ms, ms / p50[0]) for f, ms in zip(a.artifacts, p50)]
    print("| threads | artifact | p50 ms | ratio to the first |")
    print("|---:|---|---:|---:|")
    for threads, f, ms, ratio in rows:
        print(f"| {threads} | {f} | {ms:.2f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
