"""Activation observers: the range each int8 activation gets, chosen by expected error.

An int8 activation with range ``[lo, hi]`` has two kinds of error. Values inside the
range are rounded to a grid of step ``(hi - lo) / 255``: about ``step**2 / 12`` each.
Values outside are clipped: ``(x - hi)**2`` each. A wide range trades clipping for
rounding noise on every value, a narrow one the other way; the best range is where the
sum is smallest, and for DoTCoM's heavy-tailed activations (residual streams, attention
outputs, the DoT-block branches) it clips a few outliers.

PT2E's ``HistogramObserver`` searches for that range greedily (caffe2's norm
minimisation: move one end a quantile step at a time, stop at the first step that does
not improve). On DoTCoM it stopped at once almost everywhere: measured on the shapes
fixture, no activation had a single value clipped, the step was ~10x the values' rms,
and the local SQNR at a quarter of the quantize points was only 24-28 dB. The output
SQNR of the whole network was 25 dB.

:class:`MSEHistogramObserver` keeps the same histogram (so calibration costs the same)
and replaces the search with an exhaustive one over a grid of candidate ranges, the
error of each computed in closed form from prefix sums of the histogram: a few
milliseconds per observer, where the greedy Python loop took longer.

An activation that only feeds a SiLU (a conv's output in ``x * sigmoid(x)``: 63 of them
in DoTCoM-Tiny) is scored by the error of ``silu(x)``, not of ``x``: below about -4 the
SiLU is flat, so rounding and clipping there cost almost nothing, and the range can
spend its levels on the values that reach the next layer (:func:`mark_silu_inputs`).
Measured on the shipped fixtures (64x64, 64 calibration images; Sapphire Rapids): shapes 25.42 -> 26.17
dB, digits 31.34 -> 31.39 dB (quantize/README.md).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.fx import GraphModule, Node
from torchao.quantization.pt2e.observer import HistogramObserver

# Candidate ends of the range: every CANDIDATE_STRIDE-th edge of the 2,048-bin histogram,
# so at most 257 candidates for each end (at most 66,000 ranges, all scored at once).
CANDIDATE_STRIDE = 8


def mse_range(histogram: torch.Tensor, lo: float, hi: float, levels: int,
              stride: int = CANDIDATE_STRIDE, downstream: str | None = None) -> tuple[float, float]:
    """The ``(lo, hi)`` among the histogram's edges that minimises the expected squared error.

    ``downstream`` names an elementwise function the quantized values go through next
    (a key of :data:`DOWNSTREAM`); the error is then that of the function's output:
    clipping ``x`` to ``g`` costs ``(f(x) - f(g))**2`` and rounding costs
    ``f'(x)**2 * step**2 / 12`` (first order). ``None`` scores ``x`` itself.

    ``histogram`` counts values in equal bins over ``[lo, hi]``; each bin's values are
    taken at its centre. A range must contain 0 (the quantized zero must be exact), so
    the low end is searched at or below 0 and the high end at or above it. Each
    candidate is scored on the grid it really gets: the zero point is an integer, so
    ``lo`` moves to the nearest multiple of the step (clipping or freeing a little).
    """
    h = histogram.double()
    n = h.numel()
    width = (hi - lo) / n
    if width <= 0 or h.sum() <= 0:
        return lo, hi
    centres = lo + width * (torch.arange(n, dtype=torch.float64) + 0.5)
    zero = torch.zeros(1, dtype=torch.float64)
    f, df = DOWNSTREAM[downstream] if downstream else (lambda t: t, torch.ones_like)
    fc = f(centres)
    count = torch.cat([zero, h.cumsum(0)])  # count[k]: values in bins [0, k)
    first = torch.cat([zero, (h * fc).cumsum(0)])
    second = torch.cat([zero, (h * fc * fc).cumsum(0)])
    slope = torch.cat([zero, (h * df(centres) ** 2).cumsum(0)])

    edges = lo + width * torch.arange(0, n + 1, stride, dtype=torch.float64)
    edges = torch.cat([edges, torch.tensor([hi], dtype=torch.float64)]).unique()
    lows = edges[edges <= 0] if bool((edges <= 0).any()) else zero
    highs = edges[edges >= 0] if bool((edges >= 0).any()) else zero
    x_lo, x_hi = lows[:, None], highs[None, :]
    step = ((x_hi - x_lo) / (levels - 1)).clamp_min(max(width, 1e-12))
    # The grid the quantizer will use (integer zero point, as _calculate_qparams rounds it).
    zp = torch.round(-x_lo / step).clamp(0, levels - 1)
    g_lo, g_hi = -zp * step, (levels - 1 - zp) * step
    a = torch.searchsorted(centres, g_lo)  # bins wholly below g_lo
    b = torch.searchsorted(centres, g_hi, right=True)
    # Clipped below: sum over bins < a of (f(c) - f(g_lo))^2; above: bins >= b of (f(c) - f(g_hi))^2.
    f_lo, f_hi = f(g_lo), f(g_hi)
    below = second[a] - 2 * f_lo * first[a] + f_lo ** 2 * count[a]
    above = (second[n] - second[b]) - 2 * f_hi * (first[n] - first[b]) + f_hi ** 2 * (count[n] - count[b])
    inside = (slope[b] - slope[a]).clamp_min(0) * step ** 2 / 12
    error = below.clamp_min(0) + above.clamp_min(0) + inside
    best = int(torch.argmin(error))
    i, j = divmod(best, error.shape[1])
    return float(lows[i]), float(highs[j])


def _silu_slope(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


#: Elementwise functions a range can be scored through: name -> (f, f').
DOWNSTREAM: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "silu": (torch.nn.functional.silu, _silu_slope),
}


def _feeds_only_silu(node: Node) -> bool:
    """Whether every user of ``node`` is part of one ``x * sigmoid(x)`` on it.

    In a prepared graph the mul reads the sigmoid through the sigmoid's own observer.
    """
    sigmoid, mul = torch.ops.aten.sigmoid.default, torch.ops.aten.mul.Tensor
    sigs = [u for u in node.users if u.target == sigmoid]
    if len(sigs) != 1:
        return False
    sig = sigs[0]
    through = {sig} | {u for u in sig.users if u.op == "call_module"}

    def silu_mul(u: Node) -> bool:
        return u.target == mul and len(u.args) == 2 and node in u.args and any(a in through for a in u.args)

    return all(u is sig or silu_mul(u) for u in node.users)


def mark_silu_inputs(prepared: GraphModule) -> int:
    """Score the range of every MSE observer that feeds only a SiLU through the SiLU.

    Runs on a prepared (observed) graph after calibration and before ``convert_pt2e``:
    an observer module's node whose users are the sigmoid and the mul of one SiLU gets
    ``downstream = "silu"``. Returns how many were marked.
    """
    marked = 0
    for node in prepared.graph.nodes:
        if node.op != "call_module":
            continue
        observer = getattr(prepared, str(node.target), None)
        if isinstance(observer, MSEHistogramObserver) and _feeds_only_silu(node):
            observer.downstream = "silu"
            marked += 1
    return marked


class MSEHistogramObserver(HistogramObserver):
    """``HistogramObserver`` whose range minimises the expected squared error (see the module).

    ``downstream`` (set by :func:`mark_silu_inputs`) scores the range through that function.
    """

    downstream: str | None = None

    def _non_linear_param_search(self) -> tuple[torch.Tensor, torch.Tensor]:
        levels = int(self.quant_max) - int(self.quant_min) + 1
        lo, hi = mse_range(self.histogram, float(self.min_val), float(self.max_val), levels,
                           downstream=self.downstream)
        return (torch.tensor(lo, dtype=self.min_val.dtype, device=self.min_val.device),
                torch.tensor(hi, dtype=self.max_val.dtype, device=self.max_val.device))
