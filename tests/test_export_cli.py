"""Bad input to `dotcom-mobile export` ends in one clear line, before any lowering, with
nothing written; `--help` stays fast (no torch import)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dotcom_mobile.cli import main as cli_main


def _run(argv, capsys) -> str:
    rc = cli_main(["export", *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    return err


def test_unknown_target(tmp_path, capsys):
    err = _run(["--model", "dotcom_tiny", "--target", "xnnpak", "--out", str(tmp_path / "o")], capsys)
    assert "unknown target 'xnnpak'" in err and "did you mean xnnpack" in err
    assert not (tmp_path / "o").exists()


def test_qnn_without_sdk_names_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    err = _run(["--model", "dotcom_tiny", "--target", "qnn", "--out", str(tmp_path / "o")], capsys)
    assert "QNN_SDK_ROOT is not set" in err
    monkeypatch.setenv("QNN_SDK_ROOT", str(tmp_path / "nowhere"))
    assert "is not a directory" in _run(["--model", "dotcom_tiny", "--target", "qnn"], capsys)


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    err = _run(["--model", "dotcom_tiny", "--out", str(blocker / "sub")], capsys)
    assert err.startswith(f"Error: cannot write to output folder {blocker / 'sub'}")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("size", ["100", "0"])
def test_input_size_not_a_multiple_of_32(size, tmp_path, capsys):
    err = _run(["--model", "dotcom_tiny", "--input-size", size, "--out", str(tmp_path / "o")], capsys)
    assert "multiples of 32" in err and not (tmp_path / "o").exists()


def test_missing_or_foreign_quantized_file(tmp_path, capsys):
    err = _run(["--quantized", str(tmp_path / "none.pt2"), "--out", str(tmp_path / "o")], capsys)
    assert "quantized model" in err and "no such file" in err
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a zip archive")
    err = _run(["--quantized", str(junk), "--out", str(tmp_path / "o")], capsys)
    assert "is not a torch.export .pt2 file" in err and not (tmp_path / "o").exists()


def test_other_mistakes(tmp_path, capsys):
    assert "give --model NAME" in _run(["--out", str(tmp_path)], capsys)
    assert "unknown model" in _run(["--model", "dotcom_huge", "--out", str(tmp_path)], capsys)
    assert "--fp16 applies to vulkan" in _run(["--model", "dotcom_tiny", "--fp16"], capsys)
    assert "not both" in _run(["--model", "dotcom_tiny", "--checkpoint", "a.pth", "--quantized", "b.pt2",
                               "--out", str(tmp_path)], capsys)
    assert list(tmp_path.iterdir()) == []


def test_help_is_fast_and_complete():
    code = ("import sys; from click.testing import CliRunner; from dotcom_mobile.cli import cli; "
            "r = CliRunner().invoke(cli, ['export', '--help']); print(r.output); "
            "assert 'torch' not in sys.modules, 'export --help imported torch'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for option in ("--model", "--checkpoint", "--quantized", "--target", "--task", "--input-size", "--fp16",
                   "--compute-unit", "--bundled", "--etrecord", "--out", "Examples:"):
        assert option in out
