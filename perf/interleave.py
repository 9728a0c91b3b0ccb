"""Time several ``.pte`` in one process, one call of each in turn: ratios that share the host's load.

The command-line face of :mod:`dotcom_mobile.bench.in_turn`: every round calls each
program once, so the drift of a shared host hits all of them alike, and the p50 of each
is printed with its ratio to the first artifact.

Usage::

    python -m dotcom_mobile.perf.interleave fp32.pte static_q8.pte dynamic_q8.pte --threads 1,2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dotcom_mobile.bench.in_turn import time_in_child
from dotcom_mobile.model.errors import DotcomError


def input_shape(pte: Path) -> list[int]:
    """The input shape from the manifest beside ``pte`` (``export`` writes it)."""
    manifest = pte.with_suffix(".json")
    if not manifest.exists():
        raise SystemExit(f"Error: {manifest} not found: pass --shape N,C,H,W for artifacts without a manifest")
    return list(json.loads(manifest.read_text())["input"]["shape"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dotcom_mobile.perf.interleave", description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", type=Path, nargs="+", help=".pte files; ratios are to the first")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (one process each)")
    p.add_argument("--rounds", type=int, default=50, help="timed calls of each program")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--shape", default=None, help="input shape N,C,H,W (default: the first artifact's manifest)")
    a = p.parse_args(argv)
    missing = [str(f) for f in a.artifacts if not f.is_file()]
    if missing:
        print(f"Error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    shape = [int(s) for s in a.shape.split(",")] if a.shape else input_shape(a.artifacts[0])
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
    from dotcom_mobile.export.noise import quiet_known_noise

    quiet_known_noise()  # as the CLI does: import-time library chatter unless DOTCOM_VERBOSE=1
    sys.exit(main())
