"""perf/interleave.py: round-robin timing of real programs, ratios to the first."""

from __future__ import annotations

from dotcom_mobile.perf.interleave import main


def test_times_each_program_and_prints_ratios_to_the_first(toy, capsys):
    rc = main([str(toy["xnnpack"]), str(toy["portable"]), "--threads", "1", "--rounds", "3", "--warmup", "1",
               "--shape", "1,3,16,16"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and out[0] == "| threads | artifact | p50 ms | ratio to the first |"
    rows = [line.strip("|").split("|") for line in out[2:]]
    assert [r[1].strip() for r in rows] == [str(toy["xnnpack"]), str(toy["portable"])]
    assert rows[0][3].strip() == "1.00" and float(rows[1][2]) > 0


def test_missing_artifact_is_one_line(toy, capsys, tmp_path):
    rc = main([str(toy["xnnpack"]), str(tmp_path / "nope.pte"), "--shape", "1,3,16,16"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err == f"Error: no such file: {tmp_path / 'nope.pte'}"


def test_without_manifest_or_shape_says_what_to_pass(toy, capsys):
    import pytest

    with pytest.raises(SystemExit, match="pass --shape N,C,H,W"):
        main([str(toy["xnnpack"])])


def test_perf_targets_int8_row_reads_the_programs_timed_in_turn(toy):
    """perf_targets times ET fp32 and int8 in one process; the int8 target row reads that ratio."""
    import pytest

    from dotcom_mobile.perf.perf_targets import Args, evaluate, format_tables, measure_pair
    from dotcom_mobile.report.latency import make_report

    a = Args([], [], toy["xnnpack"].parent, warmup=1, iters=2, repeats=2, native=False, onnx=False, rebuild=False,
             num_calib=0)
    pair = measure_pair(toy["xnnpack"], toy["portable"], 1, a, shape=(1, 3, 16, 16))
    assert pair is not None and pair["rounds"] == 4 and pair["fp32_ms"] > 0 and pair["q8_ms"] > 0
    assert pair["ratio"] == pytest.approx(pair["q8_ms"] / pair["fp32_ms"])

    dev = {"platform": "linux", "os": "Linux", "cpu": "Xeon", "cores": 2, "threads": 1,
           "cpu_features": ["avx2", "avx512f", "avx512_vnni"], "cpu_kind": "x86-avx512-vnni"}

    def report(name: str, quant: str, p50: float) -> dict:
        return make_report(artifact={"name": name, "backend": "xnnpack", "quantization": quant}, runner="python",
                           threads=1, warmup=0, iterations=3, repeats=1, latencies_ms=[p50] * 3, device=dict(dev))

    results = {"et_fp32": report("f.pte", "fp32", 20.0), "et_q8": report("q.pte", "q8", 16.0)}  # apart: 0.80
    in_turn = {"fp32_ms": 24.0, "q8_ms": 11.0, "ratio": 11.0 / 24.0, "rounds": 150}
    row = evaluate(results, in_turn)[0]
    assert row["target"].endswith("timed in turn") and row["ratio"] == pytest.approx(11 / 24) and row["pass"] is True
    assert evaluate(results)[0]["ratio"] == pytest.approx(0.8) and evaluate(results)[0]["pass"] is False
    table = format_tables({("dotcom_tiny", 1): results}, {("dotcom_tiny", 1): in_turn})
    assert "timed in turn, 150 calls each: p50 24.00 / 11.00 ms" in table and "| 0.46 | <= 0.5 | PASS |" in table


def test_ratio_line_names_each_thread_count():
    from dotcom_mobile.bench.in_turn import ratio_line

    line = ratio_line({1: (30.0, 21.6), 2: (20.0, 15.2)}, 40)
    assert line == "int8/fp32 p50, timed in turn (40 calls each): 0.72 at 1 thread, 0.76 at 2 threads"


def test_in_turn_child_failure_is_one_line(toy, tmp_path):
    import pytest

    from dotcom_mobile.bench.in_turn import time_in_child
    from dotcom_mobile.model.errors import DotcomError

    bad = tmp_path / "cut.pte"
    bad.write_bytes(toy["xnnpack"].read_bytes()[:300])
    with pytest.raises(DotcomError) as exc:
        time_in_child([toy["xnnpack"], bad], 1, [1, 3, 16, 16], 0, 1)
    assert str(exc.value).startswith("timing at 1 thread(s) failed: ") and "\n" not in str(exc.value)
