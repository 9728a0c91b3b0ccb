"""bench/report/demo command surface and the performance-targets arithmetic (no lowering)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dotcom_mobile.cli import main as cli_main
from dotcom_mobile.report.latency import make_report


@pytest.mark.parametrize("command", ["bench", "report", "demo"])
def test_help_documents_options(command):
    # bench/commands.py, report/commands.py and demo.py import only click at top level (torch loads in the command body).
    code = "import sys; from dotcom_mobile.cli import main; sys.exit(main([%r, '--help']))" % command
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Examples:" in proc.stdout and "--out" in proc.stdout


def test_bench_user_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["bench", str(tmp_path / "missing.pte")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"Error: {tmp_path / 'missing.pte'}: no such file"
    (tmp_path / "model.onnx").write_bytes(b"x")
    assert cli_main(["bench", str(tmp_path / "model.onnx")]) == 1
    assert "not a benchmarkable artifact" in capsys.readouterr().err
    (tmp_path / "a.pte").write_bytes(b"x")
    assert cli_main(["bench", str(tmp_path / "a.pte"), "--threads", "two"]) == 1
    assert "--threads must be" in capsys.readouterr().err


# A VNNI host: the int8 target depends on the CPU kind (issue 13), 0.5x there.
VNNI = {"platform": "linux", "os": "Linux", "cpu": "Xeon", "cores": 2, "threads": 2,
        "cpu_features": ["avx2", "avx512f", "avx512_vnni"], "cpu_kind": "x86-avx512-vnni"}


def _r(name: str, runner: str, p50: float, quant: str = "fp32") -> dict:
    return make_report(artifact={"name": name, "backend": "xnnpack", "quantization": quant, "macs": 693_128_192},
                       runner=runner, threads=2, warmup=0, iterations=3, repeats=1,
                       latencies_ms=[p50 * 0.9, p50, p50 * 1.5], device=dict(VNNI))


def test_perf_target_ratios():
    from dotcom_mobile.perf.perf_targets import evaluate, format_tables

    results = {"et_fp32": _r("f.pte", "python", 20.0), "et_q8": _r("q.pte", "python", 9.0, "q8"),
               "eager_fp32": _r("e", "eager", 40.0), "ort_fp32": _r("o.onnx", "onnxruntime", 25.0),
               "native_fp32": _r("f.pte", "native", 23.0)}
    rows = {r["target"]: r for r in evaluate(results)}
    int8 = rows["int8 <= 0.5x ET fp32 (x86-avx512-vnni)"]
    assert int8["ratio"] == pytest.approx(0.45) and int8["pass"]
    assert rows["int8 <= 0.25x eager fp32"]["ratio"] == pytest.approx(0.225) and rows["int8 <= 0.25x eager fp32"]["pass"]
    assert rows["ET fp32 <= ORT fp32"]["pass"] is True
    assert rows["ET int8 <= ORT int8"]["pass"] is None  # not measured
    assert rows["native fp32 within 10% of python"]["ratio"] == pytest.approx(1.15)
    assert rows["native fp32 within 10% of python"]["pass"] is False
    table = format_tables({("dotcom_tiny", 2): results})
    assert "| et_q8 | 9.00 |" in table and "FAIL" in table and "not measured" in table
    assert "34.7" in table  # GMAC/s beside the latency: 0.693 GMAC / 20 ms
