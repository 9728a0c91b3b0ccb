"""Latency statistics against the shared test vectors and numpy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dotcom_mobile.report import stats

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "report" / "schemas" / "stats_vectors.json").read_text())


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_summarize_reproduces_vectors(case):
    got = stats.summarize(case["samples"])
    assert set(got) == set(case["expected"])
    for key, want in case["expected"].items():
        assert math.isclose(got[key], want, rel_tol=VECTORS["tolerance_rel"], abs_tol=1e-12), (key, got[key], want)


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_match_numpy_linear(seed):
    rng = np.random.default_rng(seed)
    xs = list(rng.lognormal(3.0, 0.3, size=int(rng.integers(1, 200))))
    for q in (0, 1, 10, 25, 50, 90, 99, 100):
        assert math.isclose(stats.percentile(xs, q), float(np.percentile(xs, q, method="linear")), rel_tol=1e-12)
    s = stats.summarize(xs)
    assert math.isclose(s["stddev_ms"], float(np.std(xs)), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(s["mean_ms"], float(np.mean(xs)), rel_tol=1e-12)


def test_trimmed_mean_drops_ten_percent_each_end():
    xs = [1000.0] + [10.0] * 8 + [-1000.0]  # n=10: one sample dropped from each end
    assert stats.trimmed_mean(xs) == 10.0
    assert stats.trimmed_mean([1.0, 2.0, 30.0]) == pytest.approx(11.0)  # n=3: floor(0.3)=0, nothing dropped
    xs = list(range(20))  # n=20: drop 2 each end -> mean of 2..17
    assert stats.trimmed_mean(xs) == pytest.approx(np.mean(range(2, 18)))


def test_empty_and_out_of_range_are_errors():
    with pytest.raises(ValueError):
        stats.summarize([])
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)
