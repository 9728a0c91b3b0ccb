"""Runners on a real program: ExecuTorch Python runtime, eager and ONNX Runtime baselines, `bench`.

One DoTCoM-Tiny (4 classes, 64x64, the trained fixture checkpoint) exported to XNNPACK
by ``export_model`` (conftest's ``tiny_xnnpack_fp32``, shared with the other files), with
its manifest beside it; every test reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dotcom_mobile.cli import main as cli_main
from dotcom_mobile.model import DotcomError
from dotcom_mobile.report.latency import validate_report

pytestmark = pytest.mark.slow
SIZE = 64


@pytest.fixture(scope="module")
def pte(tiny_xnnpack_fp32) -> Path:
    """The trained Tiny exported to XNNPACK with its manifest (conftest: built once per run)."""
    return tiny_xnnpack_fp32.path


def test_python_runner_report_validates(pte):
    from dotcom_mobile.bench.runners import run_python

    r = run_python(pte, threads=1, warmup=2, iters=4, repeats=2)
    validate_report(r)
    res = r["results"]
    assert r["status"] == "ok" and r["runtime"]["runner"] == "python" and r["runtime"]["executorch_version"]
    assert len(res["latencies_ms"]) == 8 and res["min_ms"] <= res["p50_ms"] <= res["max_ms"]
    assert res["load_ms"] > 0 and res["first_inference_ms"] > 0 and res["peak_memory_bytes"] > 0
    art = r["artifact"]
    assert art["model"] == "dotcom_tiny" and art["backend"] == "xnnpack" and art["quantization"] == "fp32"
    assert art["input_shape"] == [1, 3, SIZE, SIZE] and art["macs"] > 0 and art["size_bytes"] == pte.stat().st_size
    assert r["delegation"]["partitions"] == 1 and r["device"]["threads"] == 1


def test_pte_delegation_read_from_program(pte):
    from dotcom_mobile.report.latency import delegation_from_pte

    d = delegation_from_pte(pte)
    assert d == {"partitions": 1, "non_delegated_ops": {}}


def test_eager_and_onnxruntime_baselines_validate(pte, tmp_path, trained_tiny):
    from dotcom_mobile.bench.runners import run_eager, run_onnxruntime, spec_for

    spec = spec_for(pte, trained_tiny)
    assert (spec.model, spec.num_classes, spec.input_shape) == ("dotcom_tiny", 4, (1, 3, SIZE, SIZE))
    eager = validate_report(run_eager(spec, 1, warmup=1, iters=3, repeats=1))
    assert eager["artifact"]["name"] == "dotcom_tiny_eager_fp32" and eager["runtime"]["version"] == torch.__version__
    ort = validate_report(run_onnxruntime(spec, 1, warmup=1, iters=3, repeats=1, cache_dir=tmp_path))
    assert ort["artifact"]["name"] == "dotcom_tiny_onnxruntime_fp32.onnx" and ort["status"] == "ok"
    spec.quantization = "q8"
    ort8 = validate_report(run_onnxruntime(spec, 1, warmup=1, iters=3, repeats=1, cache_dir=tmp_path))
    assert ort8["artifact"]["quantization"] == "q8" and ort8["artifact"]["sha256"] != ort["artifact"]["sha256"]

    # The ONNX graph computes what the eager network computes (same weights, Co-Bias folded).
    import onnxruntime as ort_rt

    from dotcom_mobile.bench.runners import build_eager, make_input

    spec.quantization = "fp32"
    x = make_input(spec.input_shape)
    sess = ort_rt.InferenceSession(str(tmp_path / "dotcom_tiny_onnxruntime_fp32.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = build_eager(spec)(x).numpy()
    assert abs(got - want).max() < 1e-3


def test_bench_command_writes_reports_and_table(pte, tmp_path, capsys, trained_tiny):
    import numpy as np

    from dotcom_mobile.report.host import current_rss_bytes

    # Ballast: 1.5 GB resident in this process. Each run happens in a fresh child process,
    # so the reports' peak memory must not include it.
    ballast = np.ones(1_500_000_000 // 8)
    parent_rss = current_rss_bytes()
    out = tmp_path / "reports"
    code = cli_main(["bench", str(pte), "--threads", "1,2", "--warmup", "1", "--iters", "3", "--repeats", "1",
                     "--baseline", "eager", "--checkpoint", str(trained_tiny), "--out", str(out), "--no-progress"])
    assert code == 0
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["dotcom_tiny_eager_fp32__eager__t1.json", "dotcom_tiny_eager_fp32__eager__t2.json",
                     "dotcom_tiny_xnnpack_fp32__python__t1.json", "dotcom_tiny_xnnpack_fp32__python__t2.json"]
    for p in out.glob("*.json"):
        res = validate_report(p)["results"]
        assert res["memory_scope"] == "process"
        assert 0 < res["memory_before_load_bytes"] < res["peak_memory_bytes"] < parent_rss - 1_000_000_000
    del ballast
    table = capsys.readouterr().out
    assert "p50 ms" in table and "GMAC/s" in table and "dotcom_tiny_xnnpack_fp32.pte" in table and "100% 1p" in table


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_pte_gets_one_clear_line(pte, tmp_path, capsys, damage):
    from dotcom_mobile.bench.runners import run_python

    data = pte.read_bytes()
    bad = tmp_path / "dotcom_tiny_xnnpack_q8.pte"
    bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a program" * 64, "empty": b""}[damage])
    expected = {"truncated": f"{bad} is truncated: its header says ",
                "garbage": f"{bad} is not an ExecuTorch program (no ET12 file identifier at byte 4)",
                "empty": f"{bad} is not an ExecuTorch program (the file is empty)"}[damage]
    with pytest.raises(DotcomError) as e:
        run_python(bad, threads=1, warmup=0, iters=1, repeats=1)
    assert str(e.value).startswith(expected) and "\n" not in str(e.value)

    # Checked while planning, before anything runs: the good artifact beside it is not run
    # either, and the report folder is never made.
    out = tmp_path / "reports"
    code = cli_main(["bench", str(pte), str(bad), "--threads", "1", "--iters", "1", "--warmup", "0", "--repeats", "1",
                     "--out", str(out), "--quiet"])  # --no-progress's old spelling, still taken
    captured = capsys.readouterr()
    assert code == 1 and captured.err == f"Error: {e.value}\n" and not out.exists()


def test_corrupt_pte_native_runner_one_line(pte, tmp_path):
    pytest.importorskip("dotcom_mobile.bench.native")
    from dotcom_mobile.bench.suite import Job, Protocol, _run_native, execute, plan

    bad = tmp_path / "dotcom_tiny_xnnpack_q8.pte"
    bad.write_bytes(pte.read_bytes()[:4096])
    with pytest.raises(DotcomError, match=r"dotcom_tiny_xnnpack_q8.pte is truncated: its header says"):
        plan([bad], runner="native", threads=[1], protocol=Protocol(0, 1, 1))
    # Past the planner's check, the binary still answers in one line and leaves an error report.
    tmp = tmp_path / "r"
    outcome = execute([Job("bad native", "native", 1, lambda: _run_native(bad, 1, Protocol(0, 1, 1), tmp), bad)],
                      tmp, protocol=Protocol(0, 1, 1), progress=False)
    (error,) = outcome.errors
    assert "dotcom_tiny_xnnpack_q8.pte" in error and "\n" not in error and "Traceback" not in error
    assert outcome.reports[0]["status"] == "error" and outcome.reports[0]["runtime"]["runner"] == "native"


@pytest.mark.parametrize("runner", ["python", "native"])
def test_bench_in_turn_times_the_artifacts_together(toy, tmp_path, capsys, runner):
    """``--in-turn``: one process per thread count holds every program and calls each once a step."""
    out = tmp_path / "reports"
    ptes = [toy["xnnpack"], toy["portable"]]
    code = cli_main(["bench", *map(str, ptes), "--in-turn", "--runner", runner, "--threads", "1", "--warmup", "1",
                     "--iters", "3", "--repeats", "2", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.json")) == sorted(f"{p.stem}__{runner}-in-turn__t1.json" for p in ptes)
    for pte, other in zip(ptes, reversed(ptes)):
        report = validate_report(out / f"{pte.stem}__{runner}-in-turn__t1.json")
        assert report["status"] == "ok" and report["artifact"]["name"] == pte.name
        assert report["protocol"]["in_turn_with"] == [other.name]
        assert len(report["results"]["latencies_ms"]) == 6 and report["results"]["memory_scope"] == "in_process"
    table = capsys.readouterr().out
    assert f"{runner}, in turn" in table and toy["portable"].name in table


def test_bench_in_turn_needs_two_programs(toy, tmp_path, capsys):
    out = tmp_path / "reports"
    for args, message in [([toy["xnnpack"]], "--in-turn needs two or more different .pte/.bpte files"),
                          ([toy["xnnpack"], toy["xnnpack"]], "--in-turn needs two or more different .pte/.bpte files"),
                          ([toy["xnnpack"], toy["pt2"]], f"{toy['pt2']}: --in-turn times .pte/.bpte programs together")]:
        code = cli_main(["bench", *map(str, args), "--in-turn", "--threads", "1", "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code != 0 and err.startswith(f"Error: {message}") and "\n" not in err, err
    assert not out.exists()  # refused while planning: nothing ran, nothing written


def test_in_turn_failure_gives_every_artifact_an_error_report(toy, tmp_path, capsys):
    """A program that passes planning but that XNNPACK refuses to load (its payload overwritten): the pair
    fails as one, one line names the bad file, and each artifact gets an error report naming the other."""
    data = bytearray(toy["xnnpack"].read_bytes())
    at = data.find(b"XN0")  # the XNNPACK payload's flatbuffer identifier
    assert at > 0
    data[at + 8: at + 400] = bytes(range(256)) + bytes(range(136))
    bad = tmp_path / "toy_damaged_fp32.pte"
    bad.write_bytes(bytes(data))
    out = tmp_path / "reports"
    code = cli_main(["bench", str(toy["portable"]), str(bad), "--in-turn", "--threads", "1", "--warmup", "1",
                     "--iters", "1", "--repeats", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err
    assert err.startswith(f"Error: 1 run(s) failed; first: {bad}: not a loadable ExecuTorch program"), err
    reports = {p.name: validate_report(p) for p in out.glob("*.json")}
    assert sorted(reports) == ["toy_damaged_fp32__python-in-turn__t1.json", "toy_portable_fp32__python-in-turn__t1.json"]
    for name, other in [("toy_damaged_fp32", toy["portable"].name), ("toy_portable_fp32", bad.name)]:
        report = reports[f"{name}__python-in-turn__t1.json"]
        assert report["status"] == "error" and report["error"].startswith(f"{bad}: ")
        assert report["protocol"]["in_turn_with"] == [other]
