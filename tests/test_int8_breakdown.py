"""perf/int8_breakdown.py: its GEMM-depth probes lower to one int8 XNNPACK partition and compute the conv."""

from __future__ import annotations

import pytest
import torch

from dotcom_mobile.export.api import run_program
from dotcom_mobile.perf.int8_breakdown import GEMM_DEPTHS, PROBES, build_probe, lower_pair


def test_every_gemm_depth_has_a_probe_of_that_depth():
    for k in GEMM_DEPTHS:
        model, shape = build_probe(f"pw_k{k}", 64)
        (conv,) = model
        assert f"pw_k{k}" in PROBES and conv.in_channels == k == shape[1] and conv.kernel_size == (1, 1)
        assert shape == (1, k, 16, 16)


@pytest.mark.parametrize("k", [16, 128])
def test_gemm_depth_probe_runs_int8_close_to_fp32(k, tmp_path):
    model, shape = build_probe(f"pw_k{k}", 32)
    fp32, int8, d32, d8 = lower_pair(model, shape, tmp_path, f"pw_k{k}")
    assert d32["partitions"] == d8["partitions"] == 1
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(5))
    ref = model(x).detach()
    (y32,) = run_program(fp32, [x])
    (y8,) = run_program(int8, [x])
    assert torch.allclose(y32, ref, atol=1e-4, rtol=1e-4)
    # int8 with ranges calibrated on two N(0,1) inputs: coarse, but the same conv (~35-40 dB)
    sqnr = 10 * torch.log10(ref.pow(2).mean() / (y8 - ref).pow(2).mean())
    assert sqnr > 20, float(sqnr)


@pytest.mark.slow
def test_the_script_prints_its_table_without_the_libraries_import_chatter():
    """``python -m dotcom_mobile.perf.<script>`` quiets torchao's import-time pytree warning as the CLI does."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DOTCOM_VERBOSE"}
    proc = subprocess.run([sys.executable, "-m", "dotcom_mobile.perf.int8_breakdown", "--probes", "pw_k16",
                           "--size", "16", "--budget", "0.02"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| pw_k16 |" in proc.stdout and "1/1 |" in proc.stdout
    assert "KernelPreference" not in proc.stderr and "register_constant" not in proc.stderr, proc.stderr[-2000:]
