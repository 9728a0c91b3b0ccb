"""`dotcom-mobile train` / `eval` end to end on a tiny generated ImageFolder (in-process)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from cli_helpers import load_checkpoint as _load
from cli_helpers import one_error_line as _one_error_line
from cli_helpers import run_cli as _run
from dotcom_mobile.cli import main
from dotcom_mobile.train.synthetic import make_shapes_dataset

SIZE = 64
# The paper's recipe (auto would pick finetune for 64 images): these tests pin its lr schedule.
COMMON = ["--model", "dotcom_tiny", "--recipe", "paper", "--epochs", "2", "--warmup-epochs", "1", "--batch-size", "16",
          "--input-size", str(SIZE), "--workers", "0", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")  # one_thread and small_shapes: tests/conftest.py


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, small_shapes) -> Path:
    """Two epochs without interruption (8 optimizer steps)."""
    out = tmp_path_factory.mktemp("run_full")
    assert main(["train", *COMMON, "--data", str(small_shapes), "--out", str(out)]) == 0
    return out


def test_run_writes_self_describing_checkpoints_and_logs(full_run, small_shapes):
    import dotcom_mobile.model as M

    last = _load(full_run / "last.pth")
    assert last["format"] == "dotcom-mobile" and last["model"] == "dotcom_tiny"
    assert last["class_names"] == ["circle", "cross", "square", "triangle"]
    assert last["preprocess"]["input_size"] == [3, SIZE, SIZE]
    assert (last["epoch"], last["step"]) == (2, 8)
    assert last["config"]["epochs"] == 2 and last["config"]["lr"] == 1e-3
    assert {"optimizer", "scheduler", "best_top1"} <= set(last)
    # min lr = lr * 1e-3 at the end of the cosine.
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-6)
    model = M.create_model("dotcom_tiny", checkpoint=full_run / "best.pth")
    assert model.dotcom_meta["class_names"] == last["class_names"]
    assert model.dotcom_meta["preprocess"].input_size == (3, SIZE, SIZE)
    rows = list(csv.DictReader((full_run / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and [int(r["step"]) for r in rows] == [4, 8]
    assert any((full_run / "tensorboard").iterdir())
    assert not list(full_run.glob(".*.tmp"))


@pytest.mark.slow
def test_resume_continues_at_the_same_epoch_step_and_lr(tmp_path, small_shapes, full_run, capsys):
    out = tmp_path / "run"
    rc, _, err = _run(capsys, ["train", *COMMON, "--data", str(small_shapes), "--out", str(out), "--stop-at-epoch", "1"])
    assert rc == 0, err
    first = _load(out / "last.pth")
    assert (first["epoch"], first["step"]) == (1, 4)
    # After the 1-epoch warm-up the schedule is at its peak.
    assert first["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3)

    rc, stdout, err = _run(capsys, ["train", "--resume", str(out / "last.pth"), "--workers", "0", "--no-progress"])
    assert rc == 0, err
    assert "Resuming" in stdout and "epoch 1/2, step 4, lr 1.000e-03" in stdout
    resumed, straight = _load(out / "last.pth"), _load(full_run / "last.pth")
    assert (resumed["epoch"], resumed["step"]) == (straight["epoch"], straight["step"]) == (2, 8)
    assert resumed["optimizer"]["param_groups"][0]["lr"] == straight["optimizer"]["param_groups"][0]["lr"]
    assert resumed["scheduler"] == straight["scheduler"]
    # Same batches, same augmentation, same learning rates: the same weights, bit for bit.
    for k, v in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][k], v), k
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]

    # A resumed run keeps its recipe.
    rc, _, err = _run(capsys, ["train", "--resume", str(out / "last.pth"), "--lr", "0.01"])
    assert rc == 1 and err.strip().splitlines() == [
        "Error: --lr 0.01 differs from the resumed run's 0.001; a resumed run keeps its recipe (drop --lr)"]


def test_eval_equals_a_direct_computation(full_run, small_shapes, capsys):
    import dotcom_mobile.model as M

    ckpt = full_run / "last.pth"
    rc, out, err = _run(capsys, ["eval", "--checkpoint", str(ckpt), "--data", str(small_shapes), "--json",
                                 "--workers", "0", "--batch-size", "5", "--no-progress"])
    assert rc == 0, err
    row = json.loads(out)
    assert row["kind"] == "accuracy" and row["backend"] == "eager" and row["quantization"] == "fp32"

    model = M.create_model("dotcom_tiny", checkpoint=ckpt)
    tf = model.dotcom_meta["preprocess"].transform()
    names = model.dotcom_meta["class_names"]
    files = sorted((small_shapes / "val").glob("*/*.png"))
    x = torch.stack([tf(M.load_image(p)) for p in files])
    y = torch.tensor([names.index(p.parent.name) for p in files])
    with torch.no_grad():
        logits = model(x)
    assert row["count"] == len(files) == 32
    assert row["top1"] == (logits.argmax(1) == y).float().mean().item()
    assert row["top5"] == 1.0  # four classes
    assert row["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)

    rc, table, _ = _run(capsys, ["eval", "--checkpoint", str(ckpt), "--data", str(small_shapes), "--workers", "0",
                                 "--no-progress"])
    assert rc == 0 and "top-1 %" in table and f"{100 * row['top1']:.2f}" in table


# ----------------------------------------------------------------------------- bad input
@pytest.fixture
def bad_data(tmp_path) -> Path:
    return make_shapes_dataset(tmp_path / "data", num_classes=2, train_per_class=2, val_per_class=1, size=32)


def _train(data: Path, *extra: str) -> list[str]:
    return ["train", "--model", "dotcom_tiny", "--data", str(data), "--input-size", "32", "--batch-size", "2",
            "--epochs", "1", "--warmup-epochs", "0", "--workers", "0", "--no-progress", *extra]


@pytest.mark.parametrize("split", ["train", "val"])
def test_missing_split(bad_data, split, capsys, tmp_path):
    shutil.rmtree(bad_data / split)
    msg = _one_error_line(capsys, _train(bad_data, "--out", str(tmp_path / "o")))
    assert f"has no {split}/ folder" in msg
    assert not (tmp_path / "o").exists()  # nothing half-made


def test_class_in_one_split_only(bad_data, capsys, tmp_path):
    shutil.copytree(bad_data / "train" / "circle", bad_data / "train" / "star")
    msg = _one_error_line(capsys, _train(bad_data, "--out", str(tmp_path / "o")))
    assert msg == f"Error: class star is in train/ but not in val/ (both splits of {bad_data} need the same class folders)"
    shutil.rmtree(bad_data / "train" / "star")
    shutil.copytree(bad_data / "val" / "circle", bad_data / "val" / "star")
    assert "class star is in val/ but not in train/" in _one_error_line(capsys, _train(bad_data))


def test_empty_class_folder(bad_data, capsys, tmp_path):
    for p in (bad_data / "val" / "square").iterdir():
        p.unlink()
    msg = _one_error_line(capsys, _train(bad_data, "--out", str(tmp_path / "o")))
    assert f"class folder {bad_data / 'val' / 'square'} has no images" in msg


def test_other_bad_input(bad_data, capsys, tmp_path):
    assert "does not exist" in _one_error_line(capsys, _train(tmp_path / "nope"))
    assert "multiples of 32" in _one_error_line(capsys, _train(bad_data, "--input-size", "50"))
    assert "fewer than one batch" in _one_error_line(capsys, _train(bad_data, "--batch-size", "64", "--out", str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()
    assert "--warmup-epochs" in _one_error_line(capsys, _train(bad_data, "--warmup-epochs", "1"))
    assert "needs --model" in _one_error_line(capsys, ["train", "--data", str(bad_data)])
    assert "needs --checkpoint" in _one_error_line(capsys, ["eval", "--data", str(bad_data)])
    pte = tmp_path / "m.pte"
    pte.write_bytes(b"not a program")
    assert "is not an ExecuTorch program" in _one_error_line(capsys, ["eval", "--artifact", str(pte), "--data",
                                                                      str(bad_data)])


def test_timm_options_train_and_ema_is_what_best_holds(tmp_path, small_shapes, capsys):
    out = tmp_path / "opts"
    rc, stdout, err = _run(capsys, [
        "train", "--model", "dotcom_tiny", "--data", str(small_shapes), "--epochs", "1", "--warmup-epochs", "0",
        "--batch-size", "32", "--input-size", str(SIZE), "--workers", "0", "--no-progress", "--out", str(out),
        "--randaugment", "--mixup", "0.8", "--cutmix", "1.0", "--smoothing", "0.1", "--ema", "--ema-decay", "0.5",
        "--recalibrate-bn", "1"])
    assert rc == 0, err
    last, best = _load(out / "last.pth"), _load(out / "best.pth")
    cfg = last["config"]
    assert cfg["randaugment"] == "rand-m9-mstd0.5" and cfg["mixup"] == 0.8 and cfg["ema"] is True
    assert best["ema_weights"] is True and "optimizer" not in best  # best.pth is for deployment
    for k, v in last["ema"].items():  # the validated (EMA) weights are the ones kept as best
        assert torch.equal(best["state_dict"][k], v), k
    assert not all(torch.equal(last["state_dict"][k], v) for k, v in last["ema"].items())


def test_init_from_pretrained_weights_with_another_head(tmp_path, full_run, capsys):
    two = make_shapes_dataset(tmp_path / "two", num_classes=2, train_per_class=4, val_per_class=2, size=32)
    out = tmp_path / "ft"
    rc, stdout, err = _run(capsys, ["train", "--model", "dotcom_tiny", "--data", str(two), "--init",
                                    str(full_run / "last.pth"), "--lr", "1e-9", "--epochs", "1", "--warmup-epochs", "0",
                                    "--batch-size", "8", "--input-size", "32", "--workers", "0", "--no-progress",
                                    "--out", str(out)])
    assert rc == 0, err
    assert "new classifier head for 2 classes (the checkpoint's: 4 classes)" in stdout
    pre, ft = _load(full_run / "last.pth")["state_dict"], _load(out / "last.pth")["state_dict"]
    assert ft["head.weight"].shape[0] == 2
    convs = [k for k, v in pre.items() if k.endswith("weight") and v.dim() == 4]
    for k in convs:  # lr 1e-9: the backbone is still the pretrained one
        torch.testing.assert_close(ft[k], pre[k], rtol=0, atol=1e-6)
