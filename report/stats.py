"""Latency statistics with one definition for every runner.

The C++ runner, the Android and iOS apps and this module must agree to the last
digit, so the definitions are spelled out here and pinned by
``report/schemas/stats_vectors.json``:

* percentile ``q``: linear interpolation between closest ranks (numpy's default,
  Hyndman & Fan type 7): ``h = (n - 1) * q / 100``, ``x[floor(h)] + (h - floor(h)) *
  (x[floor(h) + 1] - x[floor(h)])`` on the sorted samples;
* trimmed mean: drop ``floor(0.1 * n)`` samples from each end of the sorted samples,
  mean of the rest;
* stddev: population standard deviation (ddof = 0).
"""

from __future__ import annotations

import math
from typing import Sequence

TRIM_FRACTION = 0.1


def percentile(samples: Sequence[float], q: float) -> float:
    """Type-7 percentile of ``samples`` for ``q`` in [0, 100]."""
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    xs = sorted(samples)
    h = (len(xs) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def trimmed_mean(samples: Sequence[float], fraction: float = TRIM_FRACTION) -> float:
    """Mean after dropping ``floor(fraction * n)`` samples from each end."""
    if not samples:
        raise ValueError("trimmed mean of an empty sample")
    xs = sorted(samples)
    k = math.floor(fraction * len(xs))
    kept = xs[k: len(xs) - k]
    return math.fsum(kept) / len(kept)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """The ``results`` statistics of a latency report, keyed as in the schema."""
    if not samples:
        raise ValueError("no latency samples to summarize")
    n = len(samples)
    mean = math.fsum(samples) / n
    var = math.fsum((x - mean) ** 2 for x in samples) / n
    return {
        "p50_ms": percentile(samples, 50),
        "p90_ms": percentile(samples, 90),
        "p99_ms": percentile(samples, 99),
        "mean_ms": mean,
        "trimmed_mean_ms": trimmed_mean(samples),
        "min_ms": min(samples),
        "max_ms": max(samples),
        "stddev_ms": math.sqrt(var),
    }
