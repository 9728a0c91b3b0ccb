"""Time several ``.pte`` in one process, one call of each in turn: ratios that share the host's load.

On a shared host one artifact's latency drifts by tens of percent between runs
(``perf/README.md``), so two artifacts timed one after the other see different loads and
their ratio moves with it. Here every round calls each program once, the drift hits all of
them alike, and the p50 of each comes back. One fresh process per thread count: XNNPACK's
thread pool is sized before the first method loads. Used by ``demo`` (its int8/fp32 line),
``perf/perf_targets.py`` (the int8 target) and ``perf/interleave.py`` (any set of programs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def time_round_robin(paths: list[Path], threads: int, shape: list[int], warmup: int, rounds: int) -> list[float]:
    """p50 ms of each program over ``rounds`` rounds of one call each (call in a fresh process: see module doc)."""
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
    from dotcom_mobile.model.errors import DotcomError  # here: the child imports torch and ExecuTorch only

    cmd = [sys.executable, "-m", "dotcom_mobile.bench.in_turn", *map(str, paths), "--threads", str(threads),
           "--rounds", str(rounds), "--warmup", str(warmup), "--shape", ",".join(map(str, shape))]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise DotcomError(f"timing at {threads} thread(s) failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio_line(p50s: dict[int, tuple[float, float]], calls: int) -> str:
    """``int8/fp32 p50, timed in turn (40 calls each): 0.72 at 1 thread, 0.76 at 2 threads``.

    ``p50s`` maps a thread count to (denominator ms, numerator ms), as :func:`time_in_child`
    returns them for ``[fp32, int8]``.
    """
    parts = [f"{num / den:.2f} at {t} thread{'s' if t != 1 else ''}" for t, (den, num) in p50s.items()]
    return f"int8/fp32 p50, timed in turn ({calls} calls each): {', '.join(parts)}"


def _child(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dotcom_mobile.bench.in_turn")
    p.add_argument("artifacts", type=Path, nargs="+")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--rounds", type=int, required=True)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--shape", required=True)
    a = p.parse_args(argv)
    shape = [int(s) for s in a.shape.split(",")]
    print(json.dumps(time_round_robin(a.artifacts, a.threads, shape, a.warmup, a.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(_child())
