"""``dotcom-mobile info`` and ``dotcom-mobile predict`` through the real entry point."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dotcom_mobile.model as M
from dotcom_mobile.cli import main

REFERENCE_PARAMS = {"dotcom_tiny": 1_731_064, "dotcom_small": 2_870_440, "dotcom_base": 5_895_864, "dotcom_large": 11_169_592}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def image_path(tmp_path_factory) -> Path:
    from PIL import Image, ImageDraw

    path = tmp_path_factory.mktemp("img") / "scene.png"
    image = Image.new("RGB", (400, 300), (30, 90, 200))
    ImageDraw.Draw(image).ellipse([120, 60, 300, 240], fill=(240, 200, 20))
    image.save(path)
    return path


# ---- info -------------------------------------------------------------------------------

@pytest.mark.slow
def test_info_json_every_variant_and_task(capsys):
    code, out, _ = run_cli(capsys, "info", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["model"], r["task"]) for r in rows] == [(m, t) for m in M.list_models() for t in M.TASKS]
    for r in rows:
        for key in ("model", "task", "params", "macs_224", "macs_256", "paper_params", "paper_macs"):
            assert key in r
        assert r["macs_224"] < r["macs_256"]
        assert r["macs_224"] == r["macs_224_conv_linear"] + r["macs_224_attention"]
    by = {(r["model"], r["task"]): r for r in rows}
    for name, n in REFERENCE_PARAMS.items():
        assert by[name, "classify"]["params"] == n
    for (name, task), r in by.items():
        expected = sum(p.numel() for p in M.create_model(name, task=task).parameters()) if task != "classify" else None
        if expected is not None:
            assert r["params"] == expected
        if r["paper_params"] is not None:
            assert abs(r["params_rel_diff"]) <= 0.10
    assert by["dotcom_base", "classify"]["paper_macs"] == 1_600_000_000
    assert round(by["dotcom_base", "classify"]["macs_224_conv_linear"] / 1e9, 2) == 1.61
    assert by["dotcom_base", "detect"]["paper_params"] == 6_700_000 and by["dotcom_base", "detect"]["paper_macs"] is None
    assert by["dotcom_tiny", "detect"]["paper_params"] is None
    assert by["dotcom_large", "segment"]["macs_native"] > by["dotcom_large", "segment"]["macs_256"]


def test_info_table_for_one_variant(capsys):
    code, out, _ = run_cli(capsys, "info", "--model", "tiny", "--task", "classify")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("dotcom_tiny"))
    assert re.search(r"dotcom_tiny\s+classify\s+256\s+1\.731M\s+1\.7M\s+\+1\.8%\s+0\.515\s+0\.463", row), row
    assert "FlopCounterMode" in out and "attention" in out
    code, out, _ = run_cli(capsys, "info", "--json", "--model", "dotcom_tiny", "--task", "classify")
    (r,) = json.loads(out)
    assert r["params"] == REFERENCE_PARAMS["dotcom_tiny"] and r["paper_params"] == 1_700_000


def test_info_unknown_model(capsys):
    code, out, err = run_cli(capsys, "info", "--model", "dotcom_lage")
    assert code == 1 and out == ""
    assert err.strip() == ("Error: unknown model 'dotcom_lage' (choose from dotcom_tiny, dotcom_small, dotcom_base, "
                           "dotcom_large); did you mean dotcom_large?")


# ---- predict: outputs ------------------------------------------------------------------------

def test_predict_project_checkpoint_matches_model(capsys, tiny_ckpt, image_path):
    code, out, err = run_cli(capsys, "predict", str(image_path), "--checkpoint", str(tiny_ckpt), "--topk", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{image_path}  (dotcom_tiny classify, 64x64 input)"
    printed = [(float(p), name) for _, p, name in (line.split(maxsplit=2) for line in lines[1:])]
    assert len(printed) == 3
    # the same numbers computed independently from the checkpoint
    model = M.create_model("dotcom_tiny", checkpoint=tiny_ckpt)
    x = model.dotcom_meta["preprocess"].transform()(M.load_image(image_path))[None]
    with torch.no_grad():
        probs = torch.softmax(model(x)[0], 0)
    p, idx = probs.topk(3)
    names = model.dotcom_meta["class_names"]
    assert names == ["circle", "square", "star", "triangle"]
    assert [n for _, n in printed] == [names[i] for i in idx.tolist()]
    assert [pp for pp, _ in printed] == pytest.approx(p.tolist(), abs=1e-4)


def test_predict_imagenet_names_without_checkpoint(capsys, image_path):
    code, out, _ = run_cli(capsys, "predict", str(image_path), "--model", "dotcom-tiny")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("(dotcom_tiny classify, 256x256 input)") and len(lines) == 6
    imagenet = set(M.create_model("dotcom_tiny").dotcom_meta["class_names"])
    assert all(line.split(maxsplit=2)[2] in imagenet for line in lines[1:])


def test_predict_detect_prints_boxes_in_image_pixels(capsys, image_path):
    code, out, _ = run_cli(capsys, "predict", str(image_path), "--model", "dotcom_tiny", "--task", "detect",
                           "--score-threshold", "0", "--topk", "4")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("(dotcom_tiny detect, 320x320 input)")
    boxes = [re.fullmatch(r"\s+([\d.]+)\s+(.+?)\s+\[([-\d.]+), ([-\d.]+), ([-\d.]+), ([-\d.]+)\]", line) for line in lines[1:]]
    assert len(boxes) == 4 and all(boxes)
    for m in boxes:
        x1, y1, x2, y2 = map(float, m.groups()[2:])
        assert 0 <= x1 <= x2 <= 400 and 0 <= y1 <= y2 <= 300   # original image is 400x300
        assert m[2] != "__background__"


def test_predict_segment_prints_pixel_shares(capsys, image_path):
    code, out, _ = run_cli(capsys, "predict", str(image_path), "--model", "dotcom_tiny", "--task", "segment",
                           "--topk", "21")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("(dotcom_tiny segment, 512x512 input)")
    shares = [float(line.split("%")[0]) for line in lines[1:]]
    assert shares and sum(shares) == pytest.approx(100.0, abs=0.1)


# ---- predict: bad inputs --------------------------------------------------------------------

def test_predict_unreadable_image(capsys, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    code, out, err = run_cli(capsys, "predict", str(bad), "--model", "dotcom_tiny")
    assert code == 1 and out == ""
    assert err.strip() == f"Error: {bad}: not a readable image (UnidentifiedImageError)"


def test_predict_directory(capsys, tmp_path):
    code, out, err = run_cli(capsys, "predict", str(tmp_path), "--model", "dotcom_tiny")
    assert code == 1 and out == ""
    assert err.strip() == f"Error: {tmp_path} is a directory, not an image"


def test_predict_missing_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "gone.png"), "--model", "dotcom_tiny")
    assert code == 1 and err.strip() == f"Error: {tmp_path / 'gone.png'}: no such file"


def test_predict_bad_image_among_good_ones(capsys, tmp_path, image_path):
    gone = tmp_path / "gone.jpg"
    code, out, err = run_cli(capsys, "predict", str(image_path), str(tmp_path), str(gone), str(image_path),
                             "--model", "dotcom_tiny", "--topk", "1")
    assert code == 1
    assert out.count(str(image_path)) == 2 and len(out.splitlines()) == 4
    assert err.strip().splitlines() == [f"Error: {tmp_path} is a directory, not an image", f"Error: {gone}: no such file"]


def test_predict_unknown_model_suggests(capsys, image_path):
    code, out, err = run_cli(capsys, "predict", str(image_path), "--model", "dotcom_smal")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.strip().startswith("Error: unknown model 'dotcom_smal'") and err.strip().endswith("did you mean dotcom_small?")


def test_predict_needs_a_model(capsys, image_path, tmp_path, tiny_fixture):
    code, _, err = run_cli(capsys, "predict", str(image_path))
    assert code == 1 and err.strip() == "Error: predict needs --model NAME (and optionally --checkpoint PATH)"
    # The authors' state dict names no variant, but its shapes do: no --model needed.
    authors = tmp_path / "authors.pth"
    torch.save(tiny_fixture["state_dict"], authors)
    code, out, err = run_cli(capsys, "predict", str(image_path), "--checkpoint", str(authors))
    assert code == 0 and f"{image_path}  (dotcom_tiny classify" in out, err
    # Tensors of no DoTCoM variant: nothing says which model they are.
    other = tmp_path / "other.pth"
    torch.save({"w": torch.zeros(3)}, other)
    code, _, err = run_cli(capsys, "predict", str(image_path), "--checkpoint", str(other))
    assert code == 1 and err.strip() == f"Error: checkpoint {other} does not say which model it holds: give --model NAME"


def test_predict_checkpoint_of_other_variant(capsys, image_path, tiny_ckpt):
    code, _, err = run_cli(capsys, "predict", str(image_path), "--model", "dotcom_small", "--checkpoint", str(tiny_ckpt))
    assert code == 1
    assert err.strip() == (f"Error: --model dotcom_small contradicts checkpoint {tiny_ckpt}, which holds dotcom_tiny "
                           "(drop --model: it is read from the file)")


def test_console_script_one_line_error(image_path):
    exe = Path(sys.executable).with_name("dotcom-mobile")
    if not exe.exists():
        pytest.skip("console script not installed next to this interpreter")
    proc = subprocess.run([str(exe), "predict", str(image_path), "--model", "tinyy"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "Error: unknown model 'tinyy' (choose from dotcom_tiny, dotcom_small, dotcom_base, dotcom_large); "
        "did you mean dotcom_tiny?"]
