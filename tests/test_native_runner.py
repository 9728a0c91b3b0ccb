"""The native C++ runner (runner/, bench/native.py) on real programs.

Builds the runner against the installed executorch wheel, runs real .pte/.bpte files
through it, validates its reports against the latency-report schema, and compares its
outputs with the Python runtime's for the same program and input.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from dotcom_mobile.bench.native import build_runner, run_native, run_native_in_turn
from dotcom_mobile.model import DotcomError
from dotcom_mobile.report import stats
from programs import bundled_cases, off_by_one

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "report" / "schemas" / "latency-report.v1.schema.json").read_text())
VECTORS = ROOT / "report" / "schemas" / "stats_vectors.json"


def _python_outputs(pte: Path, x: torch.Tensor) -> list[torch.Tensor]:
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(pte)).load_method("forward")
    return list(method.execute([x]))


def _run_binary(binary: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runner_bin() -> Path:
    return build_runner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_xnnpack_fp32, trained_tiny) -> dict:
    """DoTCoM-Tiny (4 classes, 64x64) as exported to XNNPACK (.pte and .bpte; conftest, once per run),
    and a copy of the .bpte whose first expected output is off by one."""
    from dotcom_mobile.model import create_model
    from dotcom_mobile.model.deploy import to_deploy

    pte = tiny_xnnpack_fp32.path
    bpte = pte.with_suffix(".bpte")
    data = bpte.read_bytes()
    (x,), _ = bundled_cases(data)[0]  # the case the runner runs
    with torch.no_grad():
        eager = to_deploy(create_model("dotcom_tiny", checkpoint=trained_tiny), "xnnpack")(x)
    d = tmp_path_factory.mktemp("tiny")
    wrong = d / "dotcom_tiny_wrong_expected.bpte"
    wrong.write_bytes(off_by_one(data))
    return {"pte": pte, "bpte": bpte, "wrong_bpte": wrong, "x": x, "eager": eager, "dir": d}


def test_build_is_reused_when_up_to_date(runner_bin: Path) -> None:
    before = runner_bin.stat().st_mtime_ns
    assert build_runner() == runner_bin
    assert runner_bin.stat().st_mtime_ns == before
    proc = _run_binary(runner_bin, "--version")
    assert proc.returncode == 0 and "ExecuTorch" in proc.stdout


# ---- statistics -------------------------------------------------------------


def test_selftest_stats_matches_vectors(runner_bin: Path) -> None:
    proc = _run_binary(runner_bin, "--selftest-stats", VECTORS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = json.loads(VECTORS.read_text())["cases"]
    assert proc.stdout.count("ok   ") == len(cases)
    assert "0 of" in proc.stdout


def test_selftest_stats_detects_a_wrong_vector(runner_bin: Path, tmp_path: Path) -> None:
    doc = json.loads(VECTORS.read_text())
    doc["cases"][2]["expected"]["p90_ms"] *= 1.0 + 1e-6
    bad = tmp_path / "vectors.json"
    bad.write_text(json.dumps(doc))
    proc = _run_binary(runner_bin, "--selftest-stats", bad)
    assert proc.returncode == 1
    assert f"FAIL {doc['cases'][2]['name']} p90_ms" in proc.stdout


# ---- reports ----------------------------------------------------------------


def _check_report(report: dict, n_latencies: int) -> None:
    jsonschema.validate(report, SCHEMA)
    assert report["status"] == "ok" and report["error"] is None
    assert report["runtime"]["runner"] == "native"
    res = report["results"]
    assert len(res["latencies_ms"]) == n_latencies
    assert all(v > 0 for v in res["latencies_ms"])
    expected = stats.summarize(res["latencies_ms"])
    for key, value in expected.items():
        assert math.isclose(res[key], value, rel_tol=1e-12, abs_tol=1e-15), key
    assert res["load_ms"] > 0 and res["first_inference_ms"] > 0
    assert res["peak_memory_bytes"] > 0
    dev = report["device"]
    assert dev["platform"] == "linux" and dev["cores"] >= 1 and dev["cpu"]


@pytest.mark.parametrize("kind", ["portable", "xnnpack"])
def test_toy_report_validates(runner_bin: Path, toy: dict, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "report.json"
    report = run_native(toy[kind], threads=1, warmup=1, iters=4, repeats=2, out_json=out)
    _check_report(report, 8)
    assert json.loads(out.read_text()) == report
    assert report["artifact"]["backend"] == kind
    assert report["artifact"]["quantization"] == "fp32"
    assert report["artifact"]["input_shape"] == [1, 3, 16, 16]
    assert report["device"]["threads"] == 1
    assert report["protocol"] == {"warmup": 1, "iterations": 4, "repeats": 2, "input": "random",
                                  "cooldown_s": None, "clock": "steady_clock"}


@pytest.mark.parametrize("kind", ["portable", "xnnpack"])
def test_toy_outputs_match_python_runtime(toy: dict, tmp_path: Path, kind: str) -> None:
    x = toy["x"]
    inp = tmp_path / "input.bin"
    inp.write_bytes(x.numpy().astype("<f4").tobytes())
    dump = tmp_path / "out.bin"
    report = run_native(toy[kind], threads=1, warmup=0, iters=1, repeats=1,
                        out_json=tmp_path / "r.json", dump_outputs=dump, input_file=inp)
    assert report["protocol"]["input"] == "file"
    native = np.frombuffer(dump.read_bytes(), dtype="<f4")
    (py,) = _python_outputs(toy[kind], x)
    np.testing.assert_allclose(native, py.numpy().ravel(), rtol=1e-5, atol=1e-6)


def test_manifest_fields_are_merged(runner_bin: Path, toy: dict, tmp_path: Path) -> None:
    pte = tmp_path / "toy_xnnpack_fp32.pte"
    pte.write_bytes(toy["xnnpack"].read_bytes())
    delegation = {"delegated_nodes": 5, "total_nodes": 6, "fraction": 5 / 6, "partitions": 1,
                  "non_delegated_ops": {"aten.mean.dim": 1}}
    pte.with_suffix(".json").write_text(json.dumps({
        "schema": "dotcom-mobile/manifest", "model": "toy", "task": "classify",
        "input": {"name": "x", "shape": [1, 3, 16, 16], "layout": "NCHW", "dtype": "float32"},
        "backend": "xnnpack", "quantization": "fp32", "delegation": delegation}))
    report = run_native(pte, threads=1, warmup=0, iters=2, repeats=1, out_json=tmp_path / "r.json")
    assert report["artifact"]["model"] == "toy" and report["artifact"]["task"] == "classify"
    assert report["delegation"] == delegation
    jsonschema.validate(report, SCHEMA)


# ---- broken inputs ------------------------------------------------------------


def _broken_variants(pte: Path, d: Path) -> dict[str, Path]:
    data = pte.read_bytes()
    variants = {
        "truncated_half": data[: len(data) // 2],
        "truncated_tail": data[:-64],
        "header_only": data[:16],
        "garbage": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "zeroed_middle": data[:64] + bytes(len(data) // 2) + data[64 + len(data) // 2:],
        "empty": b"",
    }
    flipped = bytearray(data)
    for i in range(32, len(flipped), 97):
        flipped[i] ^= 0x5A
    variants["bit_flipped"] = bytes(flipped)
    paths = {}
    for name, blob in variants.items():
        p = d / f"{name}.pte"
        p.write_bytes(blob)
        paths[name] = p
    return paths


def test_toy_bundled_program_verifies(toy: dict, tmp_path: Path) -> None:
    dump = tmp_path / "out.bin"
    report = run_native(toy["bpte"], threads=1, warmup=1, iters=2, repeats=1,
                        out_json=tmp_path / "r.json", verify=True, dump_outputs=dump)
    _check_report(report, 2)
    assert report["protocol"]["input"] == "bundled"
    assert report["results"]["outputs_verified"] is True
    np.testing.assert_allclose(np.frombuffer(dump.read_bytes(), dtype="<f4"), toy["eager"].numpy().ravel(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["portable", "xnnpack", "bpte"])
def test_corrupt_and_truncated_pte_give_one_line(runner_bin: Path, toy: dict, tmp_path: Path, kind: str) -> None:
    for name, path in _broken_variants(toy[kind], tmp_path).items():
        out = tmp_path / f"{name}.json"
        proc = _run_binary(runner_bin, "--model", path, "--iters", "2", "--warmup", "0", "--repeats", "1",
                           "--out", out)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 1, (name, proc.returncode, proc.stderr)  # an error, not a crash (3)
        assert len(lines) == 1 and lines[0].startswith("dotcom_runner: error: "), (name, proc.stderr)
        assert lines[0].startswith(f"dotcom_runner: error: {path}: "), (name, lines[0])
        assert any(w in lines[0] for w in ("corrupt", "truncated", "not an ExecuTorch program")), lines[0]
        report = json.loads(out.read_text())
        jsonschema.validate(report, SCHEMA)
        assert report["status"] == "error" and report["results"] is None
        assert report["error"] == lines[0].removeprefix("dotcom_runner: error: ")


def test_fatal_signal_still_gives_one_line_and_an_error_report(runner_bin: Path, toy: dict, tmp_path: Path) -> None:
    """The last-resort handler: a crash inside the runtime must not end without a report."""
    import signal
    import time

    out = tmp_path / "crash.json"
    proc = subprocess.Popen([str(runner_bin), "--model", str(toy["portable"]), "--iters", "1000000",
                             "--repeats", "1", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    # Signal only once the handler is installed (SigCgt has SIGSEGV's bit), not while
    # the dynamic loader is still mapping the runtime libraries.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caught = int(next(ln for ln in status.splitlines() if ln.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signal.SIGSEGV - 1)):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGSEGV)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "crashed (SIGSEGV)" in lines[0]
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["status"] == "error" and "SIGSEGV" in report["error"]


def test_wrapper_turns_a_truncated_pte_into_dotcom_error(toy: dict, tmp_path: Path) -> None:
    bad = tmp_path / "cut.pte"
    bad.write_bytes(toy["xnnpack"].read_bytes()[:300])
    out = tmp_path / "r.json"
    with pytest.raises(DotcomError) as exc:
        run_native(bad, threads=1, warmup=0, iters=1, repeats=1, out_json=out)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{bad}: ") and "truncated or corrupt" in msg
    assert json.loads(out.read_text())["status"] == "error"


def test_missing_file_and_bad_options(runner_bin: Path, tmp_path: Path) -> None:
    with pytest.raises(DotcomError, match="artifact not found"):
        run_native(tmp_path / "nope.pte", threads=1, warmup=0, iters=1, repeats=1, out_json=tmp_path / "r.json")
    proc = _run_binary(runner_bin, "--model", tmp_path / "nope.pte", "--iters", "zero")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--iters" in proc.stderr
    proc = _run_binary(runner_bin, "--model", tmp_path / "nope.pte")
    assert proc.returncode == 1 and "cannot open" in proc.stderr and proc.stderr.count("\n") == 1


def test_input_file_of_wrong_size_is_rejected(toy: dict, tmp_path: Path) -> None:
    inp = tmp_path / "small.bin"
    inp.write_bytes(bytes(100))
    with pytest.raises(DotcomError, match=r"input file .* 100 bytes"):
        run_native(toy["portable"], threads=1, warmup=0, iters=1, repeats=1,
                   out_json=tmp_path / "r.json", input_file=inp)


def test_etdump_profiles_every_run_of_the_delegate(toy: dict, tmp_path: Path) -> None:
    """--etdump: the ExecuTorch Inspector reads the runner's profile, one sample per run, XNNPACK's operators in it."""
    import warnings

    from executorch.devtools import Inspector

    etdp = tmp_path / "toy.etdp"
    report = run_native(toy["xnnpack"], threads=1, warmup=2, iters=3, repeats=1, out_json=tmp_path / "r.json",
                        etdump=etdp)
    assert report["status"] == "ok" and len(report["results"]["latencies_ms"]) == 3
    assert not list(tmp_path.glob("*.tmp"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blocks = [b for b in Inspector(etdump_path=str(etdp)).event_blocks if b.name == "Execute"]
    events = [e for b in blocks for e in b.events]
    delegated = [e for e in events if e.is_delegated_op]
    assert delegated and all("(" in e.name for e in delegated)  # "Convolution (NHWC, F32) IGEMM #1", ...
    runs = {len(e.perf_data.raw) for e in events if e.perf_data is not None}
    assert runs == {5}  # 2 warm-up + 3 timed runs, every event in every run


def test_etdump_that_cannot_be_written_is_one_line(toy: dict, tmp_path: Path) -> None:
    with pytest.raises(DotcomError) as exc:
        run_native(toy["xnnpack"], threads=1, warmup=1, iters=1, repeats=1, out_json=tmp_path / "r.json",
                   etdump=tmp_path / "no_such_dir" / "toy.etdp")
    msg = str(exc.value)
    assert "\n" not in msg and "cannot write ETDump" in msg and str(toy["xnnpack"]) in msg


def test_report_that_cannot_be_written_is_one_line(runner_bin: Path, toy: dict, tmp_path: Path) -> None:
    """The run succeeds but --out names a folder that is not there: exit 1, one line, nothing created."""
    out = tmp_path / "no_such_dir" / "r.json"
    proc = _run_binary(runner_bin, "--model", toy["xnnpack"], "--iters", "1", "--warmup", "0", "--repeats", "1",
                       "--out", out)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and lines == [f"dotcom_runner: error: cannot write report '{out}'"], proc.stderr
    assert not (tmp_path / "no_such_dir").exists()


def test_programs_timed_in_turn_get_a_report_each(toy: dict, tmp_path: Path) -> None:
    """Several --model: one process, each program called once per round; a valid report and an ETDump each."""
    import warnings

    from executorch.devtools import Inspector

    ptes = [toy["xnnpack"], toy["portable"]]
    outs = [tmp_path / "x.json", tmp_path / "p.json"]
    etdps = [tmp_path / "x.etdp", tmp_path / "p.etdp"]
    reports = run_native_in_turn(ptes, threads=1, warmup=2, iters=3, repeats=2, out_jsons=outs, etdumps=etdps)
    for pte, out, report, other in zip(ptes, outs, reports, reversed(ptes)):
        assert json.loads(out.read_text()) == report
        jsonschema.validate(report, SCHEMA)
        assert report["status"] == "ok" and report["artifact"]["path"] == str(pte)
        assert report["protocol"]["in_turn_with"] == [other.name]
        assert len(report["results"]["latencies_ms"]) == 6 and report["results"]["memory_scope"] == "in_process"
    assert reports[0]["artifact"]["backend"] == "xnnpack" and reports[1]["artifact"]["backend"] == "portable"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delegated = [[e for b in Inspector(etdump_path=str(etdp)).event_blocks if b.name == "Execute"
                      for e in b.events if e.is_delegated_op] for etdp in etdps]
    assert delegated[0] and not delegated[1]  # each dump holds its own program's events
    assert {len(e.perf_data.raw) for e in delegated[0]} == {2 + 6}
    alone = run_native(toy["xnnpack"], threads=1, warmup=0, iters=1, repeats=1, out_json=tmp_path / "alone.json")
    assert "in_turn_with" not in alone["protocol"] and alone["results"]["memory_scope"] == "process"


def test_in_turn_failure_names_the_program_and_every_report_says_so(runner_bin: Path, toy: dict,
                                                                    tmp_path: Path) -> None:
    bad = tmp_path / "cut.pte"
    bad.write_bytes(toy["xnnpack"].read_bytes()[:300])
    outs = [tmp_path / "good.json", tmp_path / "bad.json"]
    with pytest.raises(DotcomError) as exc:
        run_native_in_turn([toy["xnnpack"], bad], threads=1, warmup=0, iters=1, repeats=1, out_jsons=outs)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{bad}: ") and "truncated or corrupt" in msg
    for out in outs:
        report = json.loads(out.read_text())
        jsonschema.validate(report, SCHEMA)
        assert report["status"] == "error" and report["error"] == msg
    # Per-program options pair with the models in order: a count that does not match is a usage error.
    proc = _run_binary(runner_bin, "--model", toy["xnnpack"], "--model", toy["portable"], "--out", outs[0])
    assert proc.returncode == 2 and proc.stderr == (
        "dotcom_runner: error: --out is given once for 2 models; give it once per --model, in the same order "
        "(see --help)\n")
    proc = _run_binary(runner_bin, "--model", toy["xnnpack"], "--model", toy["portable"])
    assert proc.returncode == 2 and "give --out once per --model" in proc.stderr


# ---- DoTCoM-Tiny -----------------------------------------------------------------


@pytest.mark.slow
def test_tiny_native_and_python_runtime_agree(tiny: dict, tmp_path: Path) -> None:
    x = tiny["x"]
    inp = tmp_path / "x.bin"
    inp.write_bytes(x.numpy().astype("<f4").tobytes())
    dump = tmp_path / "out.bin"
    report = run_native(tiny["pte"], threads=2, warmup=1, iters=3, repeats=1,
                        out_json=tmp_path / "r.json", dump_outputs=dump, input_file=inp)
    _check_report(report, 3)
    assert report["artifact"]["backend"] == "xnnpack"
    assert report["artifact"]["input_shape"] == [1, 3, 64, 64]
    native = np.frombuffer(dump.read_bytes(), dtype="<f4")
    (py,) = _python_outputs(tiny["pte"], x)
    assert native.shape == (4,)
    np.testing.assert_allclose(native, py.numpy().ravel(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(native, tiny["eager"].numpy().ravel(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_tiny_bundled_program_verifies(tiny: dict, tmp_path: Path) -> None:
    dump = tmp_path / "out.bin"
    report = run_native(tiny["bpte"], threads=1, warmup=0, iters=2, repeats=1,
                        out_json=tmp_path / "r.json", verify=True, dump_outputs=dump)
    _check_report(report, 2)
    assert report["protocol"]["input"] == "bundled"
    assert report["results"]["outputs_verified"] is True
    native = np.frombuffer(dump.read_bytes(), dtype="<f4")
    np.testing.assert_allclose(native, tiny["eager"].numpy().ravel(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_tiny_bundled_mismatch_is_reported(tiny: dict, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with pytest.raises(DotcomError, match="differ from the bundled expected outputs"):
        run_native(tiny["wrong_bpte"], threads=1, warmup=0, iters=1, repeats=1, out_json=out, verify=True)
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["results"]["outputs_verified"] is False
