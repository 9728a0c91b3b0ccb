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
