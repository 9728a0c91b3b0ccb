"""Issue 3 acceptance: PTQ and QAT of a trained DoTCoM-Tiny on the shapes dataset.

One ``quantize_model`` call with ``qat_epochs`` runs the whole flow: export of
the deployment form, PTQ (XNNPACKQuantizer, calibrated on real images), the per-layer
analysis, QAT from the same graph, and the saved ``.pt2``. Its report holds the PTQ
and the QAT figures side by side, so the acceptance checks share one export.
"""

from __future__ import annotations

import json

import pytest
import torch

from dotcom_mobile.quantize.api import load_quantized, quantize_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, shapes_root, trained_tiny):
    out = tmp_path_factory.mktemp("quant")
    return quantize_model(
        "dotcom_tiny", checkpoint=trained_tiny, backend="xnnpack", calib=shapes_root / "train", num_calib=64,
        val_dir=shapes_root / "val", qat_epochs=2, train_dir=shapes_root / "train", out_dir=out, progress=False,
    )


def test_ptq_close_to_fp32(run):
    """The shipped shapes checkpoint, 64 calibration images, 128 val images. Measured
    (quantize/README.md), current defaults (SiLU-scored ranges, head fp32): Intel Sapphire
    Rapids (AVX-512 VNNI, AMX) 26.21 dB, top-1 97.66 -> 97.66; the same machine with
    ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 26.29 dB, 97.66 -> 97.66. The
    previous defaults gave 25.39-25.49 dB on AMD EPYC AVX2, Zen 4 and SSE4.1. The limits
    leave 2 dB and 2 images for another CPU's arithmetic (before the checkpoint was
    shipped, a model trained at test time reached 20.3 dB on Sapphire Rapids)."""
    ptq = run.report["qat"]["ptq"]
    assert ptq["images"] == 128
    assert ptq["fp32_top1"] >= 0.95  # the shipped checkpoint (val_top1 0.977 stored in it)
    assert ptq["int8_top1"] >= ptq["fp32_top1"] - 2 / 128, ptq
    assert ptq["sqnr_db"] >= 24.0, ptq


def test_qat_at_least_ptq(run):
    q = run.report["qat"]
    assert q["qat"]["int8_top1"] >= q["ptq"]["int8_top1"], q
    assert len(q["history"]) == 2 and all(h["loss"] > 0 for h in q["history"])


def test_pt2_reloads_and_matches_in_memory_model(run, shapes_root):
    from dotcom_mobile.model import PreprocessConfig, find_images, load_image

    program, meta = load_quantized(run.pt2_path)
    assert run.pt2_path.name == "dotcom_tiny_xnnpack_q8.pt2"
    pre = meta["preprocess"]
    assert pre["input_size"] == [3, 64, 64]
    tf = PreprocessConfig.from_state(pre).transform()
    x = torch.stack([tf(load_image(p)) for p in find_images(shapes_root / "val")[:1]])
    with torch.no_grad():
        assert torch.equal(program.module()(x), run.quantized_module(x))
    assert meta["model"] == "dotcom_tiny" and meta["backend"] == "xnnpack" and meta["quantization"] == "q8"
    assert meta["num_classes"] == 4 and meta["class_names"] == ["circle", "cross", "square", "triangle"]
    d = meta["quantization_details"]
    assert d["per_channel"] is True and d["dynamic"] is False and d["method"] == "qat"
    assert "XNNPACKQuantizer" in d["quantizer"]
    # int8 weights really are in the saved program
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert any("dequantize_per_channel" in t for t in targets)
    assert any("quantize_per_tensor" in t for t in targets)


def test_reports(run):
    report = json.loads(run.report_json_path.read_text())
    assert report["artifact"]["file"] == run.pt2_path.name
    assert report["calibration"]["images"] == 64 and report["calibration"]["synthetic"] is False
    assert report["warnings"] == []
    worst = report["per_layer"]["worst_sqnr"]
    assert len(worst) == 10
    paths = [w["layer"] for w in report["per_layer"]["largest_drop"]]
    assert all(p.startswith(("stem", "stages.", "head", "(top level)")) for p in paths), paths
    assert any(w["layer"].startswith("stages.") for w in worst)
    md = run.report_md_path.read_text()
    assert "## Output quality" in md and "QAT (2 epochs)" in md and worst[0]["layer"] in md
    assert sorted(p.name for p in run.pt2_path.parent.iterdir()) == [
        "dotcom_tiny_xnnpack_q8.pt2", "quant_report.json", "quant_report.md"]
