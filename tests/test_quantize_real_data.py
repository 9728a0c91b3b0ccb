"""Issue 16 acceptance on real images: PTQ of the shipped digits checkpoint (DoTCoM-Tiny
trained on scikit-learn's 8x8 digit scans upsampled to 64x64, 10 classes), calibrated on
64 training scans and measured on all 359 held-out ones.

The checkpoint is a file (tests/fixtures/make_fixtures.py), so every machine measures the
same weights; what still differs between CPUs is the fp32 arithmetic of calibration and
evaluation (AVX2, AVX-512 and AMX kernels round differently), which moves the chosen int8
ranges a little. The thresholds below sit under the spread measured on several kinds of CPU
arithmetic (quantize/README.md, "Accuracy"):

    current defaults (SiLU-scored ranges, classifier head fp32):
    Intel Sapphire Rapids, AVX-512 + VNNI + AMX:      SQNR 32.07 dB, top-1 95.82 -> 95.82 %
    same, ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41 (no AVX kernels at all):
                                                      SQNR 32.38 dB, top-1 95.82 -> 95.54 %
    previous defaults (MSE ranges scored on x itself, head int8):
    AMD EPYC, AVX2 (no AVX-512):                      SQNR 31.57 dB, top-1 95.82 -> 95.54 %
    same, ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41 (no AVX kernels at all):
                                                      SQNR 31.25 dB, top-1 95.82 -> 95.82 %
    AMD EPYC Zen 4, AVX-512 + VNNI + BF16 (no AMX):   SQNR 31.38 dB, top-1 95.82 -> 95.54 %
"""

from __future__ import annotations

import pytest

from dotcom_mobile.quantize.api import quantize_model

pytestmark = pytest.mark.slow

SQNR_TARGET_DB = 30.0  # issue 16's target; measured 31.25-32.38 on the arithmetics above
TOP1_MARGIN = 0.005  # within 0.5 point of fp32 (measured: 0.00 or -0.28 point, one image of 359)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, trained_digits, digits_root):
    return quantize_model("dotcom_tiny", checkpoint=trained_digits, backend="xnnpack", calib=digits_root / "train",
                          num_calib=64, val_dir=digits_root / "val", out_dir=tmp_path_factory.mktemp("digits_q8"),
                          progress=False, per_layer=False)


def test_int8_keeps_fp32_accuracy_on_real_scans(digits_run):
    ev = digits_run.report["evaluation"]
    assert ev["images"] == 359
    assert ev["fp32_top1"] >= 0.95  # the checkpoint is the trained one (val_top1 0.958 stored in it)
    assert ev["sqnr_db"] >= SQNR_TARGET_DB, ev
    assert ev["int8_top1"] >= ev["fp32_top1"] - TOP1_MARGIN, ev


def test_report_names_the_observer(digits_run):
    details = digits_run.report["quantization_details"]
    assert details["observer"] == "mse" and details["method"] == "ptq"
    assert digits_run.report["warnings"] == []
