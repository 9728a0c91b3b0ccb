"""``dotcom-mobile quantize --keep-fp32 N --keep-fp32-modules PATTERN``, end to end.

The mixed-precision claim is checked on the saved program itself: the layers the
report says it kept in fp32 have no int8 weights in the ``.pt2``, every other conv
still has them, and the report carries the all-int8 figures beside the mixed ones.
"""

from __future__ import annotations

import json

import pytest
import torch

from dotcom_mobile.cli import main
from dotcom_mobile.quantize import numerics
from dotcom_mobile.quantize.api import load_quantized

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out(tmp_path_factory, shapes_root, trained_tiny):
    out = tmp_path_factory.mktemp("mixed")
    rc = main(["quantize", "--model", "dotcom_tiny", "--checkpoint", str(trained_tiny), "--backend", "xnnpack",
               "--calib", str(shapes_root / "train"), "--num-calib", "32", "--val", str(shapes_root / "val"),
               "--keep-fp32", "2", "--keep-fp32-modules", "stages.4.2.transformer.*", "--out", str(out)])
    assert rc == 0
    return out


def _int8_weight_layers(program) -> set[str]:
    """Module paths of the convs/linears whose weight enters through a per-channel dequantize."""
    layers = set()
    for n in program.graph.nodes:
        if n.op == "call_function" and "dequantize_per_channel" in str(n.target):
            for user in n.users:
                layers.add(numerics.layer_of(user))
    return layers


def test_report_has_before_and_after(out):
    report = json.loads((out / "quant_report.json").read_text())
    mixed = report["mixed_precision"]
    assert mixed["keep_fp32"] == 2 and mixed["keep_fp32_modules"] == ["stages.4.2.transformer.*"]
    assert len(mixed["kept_layers"]) == 2
    for key in ("sqnr_db", "top1_agreement", "int8_top1", "fp32_top1"):
        assert key in mixed["before"] and key in mixed["after"]
    md = (out / "quant_report.md").read_text()
    assert "all int8" in md and "mixed precision" in md
    for layer in mixed["kept_layers"]:
        assert layer in md
    details = report["quantization_details"]["kept_fp32"]
    assert "stages.4.2.transformer.*" in details and all(k in details for k in mixed["kept_layers"])


def test_kept_layers_have_no_int8_weights(out):
    program, _ = load_quantized(out / "dotcom_tiny_xnnpack_q8.pt2")
    report = json.loads((out / "quant_report.json").read_text())
    int8_layers = _int8_weight_layers(program)
    assert not any(layer.startswith("stages.4.2.transformer.") for layer in int8_layers), int8_layers
    for layer in report["mixed_precision"]["kept_layers"]:
        assert layer not in int8_layers, layer
    # ...and everything else is still int8: the stem and the first stages keep their weights quantized.
    assert "stem" in int8_layers and any(layer.startswith("stages.0.") for layer in int8_layers)
    x = torch.zeros(1, 3, 64, 64)
    assert program.module()(x).shape == (1, 4)
