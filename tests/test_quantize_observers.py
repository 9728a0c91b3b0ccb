"""The MSE activation observer (quantize/observers.py): its closed-form error picks the range
that really quantizes with the least error, and it beats min/max on heavy tails."""

from __future__ import annotations

import pytest
import torch

from dotcom_mobile.quantize.observers import CANDIDATE_STRIDE, MSEHistogramObserver, mse_range


def _fake_quant_mse(x: torch.Tensor, lo: float, hi: float) -> float:
    scale = max(hi - lo, 1e-12) / 255
    zero_point = int(round(-128 - lo / scale))
    q = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, -128, 127)
    return (x - q).pow(2).mean().item()


def _observer() -> MSEHistogramObserver:
    return MSEHistogramObserver(dtype=torch.int8, quant_min=-128, quant_max=127, qscheme=torch.per_tensor_affine,
                                eps=2**-12)


@pytest.mark.parametrize("kind", ["laplace", "silu", "positive"])
def test_chosen_range_is_the_best_candidate_by_real_quantization(kind):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, generator=g)
    if kind == "laplace":  # heavy tails: residual streams, attention outputs
        x = torch.distributions.Laplace(0.0, 1.0).sample((200_000,))
    elif kind == "silu":
        x = torch.nn.functional.silu(3 * x)
    else:
        x = x.abs()
    lo, hi = float(x.min()), float(x.max())
    hist = torch.histc(x, 2048, lo, hi)
    best_lo, best_hi = mse_range(hist, lo, hi, 256)
    assert best_lo <= 0 <= best_hi
    # Brute force over the same candidate edges, quantizing for real.
    width = (hi - lo) / 2048
    edges = [lo + width * k for k in range(0, 2049, CANDIDATE_STRIDE * 4)]
    lows, highs = [e for e in edges if e <= 0] or [0.0], [e for e in edges if e >= 0]
    brute = min(_fake_quant_mse(x, a, b) for a in lows for b in highs)
    assert _fake_quant_mse(x, best_lo, best_hi) <= brute * 1.02
    assert _fake_quant_mse(x, best_lo, best_hi) <= _fake_quant_mse(x, min(lo, 0.0), hi)


def test_observer_clips_heavy_tails_and_keeps_gaussian_whole():
    torch.manual_seed(0)
    heavy = torch.distributions.Laplace(0.0, 1.0).sample((100_000,))
    obs = _observer()
    obs(heavy)
    scale, zero_point = obs.calculate_qparams()
    full = (heavy.max() - heavy.min()).item() / 255
    assert scale.item() < 0.95 * full  # clips the far tails (measured: 0.87 of min/max's step)
    err = _fake_quant_mse(heavy, (-128 - zero_point.item()) * scale.item(), (127 - zero_point.item()) * scale.item())
    assert err < _fake_quant_mse(heavy, heavy.min().item(), heavy.max().item())

    bounded = torch.rand(100_000) * 2 - 1  # uniform: nothing to clip
    obs = _observer()
    obs(bounded)
    scale, _ = obs.calculate_qparams()
    assert scale.item() == pytest.approx(2 / 255, rel=0.02)


def test_observer_accumulates_batches_like_the_stock_one():
    obs = _observer()
    for seed in range(4):
        obs(torch.randn(1000, generator=torch.Generator().manual_seed(seed)) * (seed + 1))
    scale, zero_point = obs.calculate_qparams()
    assert scale.item() > 0 and -128 <= zero_point.item() <= 127


def _silu_mse(x: torch.Tensor, lo: float, hi: float) -> float:
    scale = max(hi - lo, 1e-12) / 255
    zero_point = int(round(-128 - lo / scale))
    q = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, -128, 127)
    return (torch.nn.functional.silu(x) - torch.nn.functional.silu(q)).pow(2).mean().item()


def test_silu_scored_range_spends_fewer_levels_on_the_flat_negative_side():
    """A conv output that only feeds a SiLU, with a long negative tail: scored through the SiLU
    the range gives up most of that tail (SiLU is ~0 there), and the SiLU's output error is lower."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(150_000, generator=g) * 2, -torch.rand(50_000, generator=g) * 12])
    lo, hi = float(x.min()), float(x.max())
    hist = torch.histc(x, 2048, lo, hi)
    plain = mse_range(hist, lo, hi, 256)
    silu = mse_range(hist, lo, hi, 256, downstream="silu")
    assert silu[0] > plain[0] + 2.0  # the low end moves up by more than 2 (measured: -12.0 -> about -6)
    assert _silu_mse(x, *silu) < 0.7 * _silu_mse(x, *plain)


def test_mark_silu_inputs_marks_every_silu_input_of_tiny_and_nothing_else():
    """On DoTCoM-Tiny's prepared graph, each observer that feeds only a SiLU (``x * sigmoid(x)``)
    is scored through it: one per sigmoid, none elsewhere."""
    import copy

    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from dotcom_mobile.model import create_model
    from dotcom_mobile.model.deploy import to_deploy
    from dotcom_mobile.quantize.backends import make_quantizer
    from dotcom_mobile.quantize.observers import mark_silu_inputs
    from dotcom_mobile.quantize.recipes import capture, default_skip

    reference = capture(to_deploy(create_model("dotcom_tiny", num_classes=4), "xnnpack"), (3, 64, 64))
    prepared = prepare_pt2e(copy.deepcopy(reference), make_quantizer("xnnpack", skip=default_skip("xnnpack")))
    sigmoids = sum(1 for n in prepared.graph.nodes if n.target == torch.ops.aten.sigmoid.default)
    assert mark_silu_inputs(prepared) == sigmoids == 63
    marked = {n.target for n in prepared.graph.nodes if n.op == "call_module"
              and getattr(getattr(prepared, n.target), "downstream", None) == "silu"}
    for n in prepared.graph.nodes:
        if n.op == "call_module" and n.target in marked:
            assert {u.target for u in n.users} == {torch.ops.aten.sigmoid.default, torch.ops.aten.mul.Tensor}
