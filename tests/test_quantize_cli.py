"""``dotcom-mobile quantize`` / ``inspect``: bad input gets one clear line and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dotcom_mobile.cli import main


@pytest.fixture
def images(tmp_path) -> Path:
    from PIL import Image

    d = tmp_path / "images"
    d.mkdir()
    for i in range(3):
        Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(d / f"{i}.png")
    return d


def _run(capsys, args: list[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in err
    return lines[0]


def test_empty_calibration_folder(capsys, tmp_path, tiny_ckpt):
    empty, out = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    code, err = _run(capsys, ["quantize", "--model", "dotcom_tiny", "--checkpoint", str(tiny_ckpt),
                              "--calib", str(empty), "--out", str(out)])
    assert code != 0
    assert "no usable calibration image" in _one_line_error(err)
    assert not out.exists()


def test_folder_of_non_images(capsys, tmp_path, tiny_ckpt):
    junk, out = tmp_path / "junk", tmp_path / "out"
    (junk / "sub").mkdir(parents=True)
    (junk / "readme.txt").write_text("hello")
    (junk / "sub" / "fake.jpg").write_bytes(b"not a jpeg at all")
    code, err = _run(capsys, ["quantize", "--model", "dotcom_tiny", "--checkpoint", str(tiny_ckpt),
                              "--calib", str(junk), "--out", str(out)])
    assert code != 0
    line = _one_line_error(err)
    assert "no usable calibration image" in line and "2 files" in line
    assert not out.exists()


def test_checkpoint_of_another_variant(capsys, tmp_path, tiny_ckpt, images):
    out = tmp_path / "out"
    code, err = _run(capsys, ["quantize", "--model", "dotcom_small", "--checkpoint", str(tiny_ckpt),
                              "--calib", str(images), "--out", str(out)])
    assert code != 0
    line = _one_line_error(err)
    assert "dotcom_tiny" in line and "dotcom_small" in line
    assert not out.exists()


def test_unknown_backend(capsys, tmp_path, tiny_ckpt, images):
    out = tmp_path / "out"
    code, err = _run(capsys, ["quantize", "--model", "dotcom_tiny", "--checkpoint", str(tiny_ckpt),
                              "--backend", "vulkan", "--calib", str(images), "--out", str(out)])
    assert code != 0
    assert "unknown backend 'vulkan'" in _one_line_error(err)
    assert not out.exists()


def test_qat_without_train_folder(capsys, tmp_path, tiny_ckpt, images):
    out = tmp_path / "out"
    code, err = _run(capsys, ["quantize", "--model", "dotcom_tiny", "--checkpoint", str(tiny_ckpt),
                              "--calib", str(images), "--qat-epochs", "1", "--out", str(out)])
    assert code != 0
    assert "--train" in _one_line_error(err)
    assert not out.exists()


def test_keep_fp32_needs_the_per_layer_analysis(capsys, tmp_path, tiny_ckpt, images):
    code, err = _run(capsys, ["quantize", "--model", "dotcom_tiny", "--checkpoint", str(tiny_ckpt),
                              "--calib", str(images), "--keep-fp32", "2", "--no-per-layer", "--out", str(tmp_path / "o")])
    assert code == 1 and "per-layer" in _one_line_error(err)
    assert not (tmp_path / "o").exists()


def test_help_lists_every_option(capsys):
    assert main(["quantize", "--help"]) == 0
    text = capsys.readouterr().out
    for opt in ("--model", "--checkpoint", "--backend", "--calib", "--num-calib", "--out", "--dynamic", "--scheme", "--min-sqnr",
                "--keep-fp32", "--keep-fp32-modules", "--qat-epochs", "--train", "--val", "--no-per-layer", "Examples"):
        assert opt in text
    assert main(["inspect", "activations", "--help"]) == 0
    assert "--images" in capsys.readouterr().out


def test_inspect_activations_writes_png(tmp_path, tiny_ckpt, images, capsys):
    out = tmp_path / "fig" / "act.png"
    code = main(["inspect", "activations", "--model", "dotcom_tiny", "--checkpoint", str(tiny_ckpt),
                 "--images", str(images), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 500
    assert [p.name for p in out.parent.iterdir()] == ["act.png"]


def test_inspect_hooks_see_co_bias(tiny_ckpt, images):
    import dotcom_mobile.model as M
    from dotcom_mobile.quantize.activations import collect
    from dotcom_mobile.quantize.data import load_image_folder

    model = M.create_model("dotcom_tiny", checkpoint=tiny_ckpt)
    with torch.no_grad():  # give Co-Bias 1 a visible shift
        model.stages[2][2].co_bias1.bias.fill_(0.5)
    x = load_image_folder(images, model.dotcom_meta["preprocess"]).inputs
    stats = collect(model, x)
    assert set(stats) == {"stages.2.2", "stages.3.2", "stages.4.2"}
    rec = stats["stages.2.2"]
    assert torch.allclose(rec["co_bias1 out"] - rec["co_bias1 in"], torch.full_like(rec["co_bias1 in"], 0.5))
