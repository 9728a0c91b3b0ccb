"""Recipes, fine-tuning from the authors' checkpoint, curves.png, and a real small dataset that trains."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from cli_helpers import load_checkpoint as _load
from cli_helpers import one_error_line
from cli_helpers import run_cli as _run
from dotcom_mobile.train import recipes as R
from dotcom_mobile.train.synthetic import make_shapes_dataset

QUIET = ["--workers", "0", "--no-progress"]
pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "log.csv").open()))


def _check_png(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (1000, 400)
    assert not list(path.parent.glob(".*.tmp*"))  # written atomically


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def digits32(tmp_path_factory) -> Path:
    from dotcom_mobile.train.digits import make_digits_dataset

    return make_digits_dataset(tmp_path_factory.mktemp("digits32"), size=32)


@pytest.mark.slow
def test_one_epoch_on_real_digits_is_far_above_chance(digits32, tmp_path, capsys):
    """The issue's failure: the paper recipe sat at chance (10%) for three epochs on digits.

    One epoch of the default (auto -> finetune) recipe at 32x32 reaches 49.3% val top-1
    (seed 0, measured on this machine); chance is 10%. The bound leaves half of that as
    margin for other CPUs' float rounding.
    """
    out = tmp_path / "run"
    rc, stdout, err = _run(capsys, ["train", "--model", "dotcom_tiny", "--data", str(digits32), "--epochs", "1",
                                    "--input-size", "32", *QUIET, "--out", str(out)])
    assert rc == 0, err
    first = stdout.splitlines()[0]
    assert first.startswith("Recipe finetune (auto: 1,438 training images, fewer than 20,000): ")
    assert "crop scale 0.5" in first and "zero-init residuals on" in first and "given: epochs 1" in first
    rows = _rows(out)
    assert [r["epoch"] for r in rows] == ["1"]
    assert float(rows[0]["top1"]) >= 0.25, rows[0]  # measured 0.493
    assert float(rows[0]["val_loss"]) < 2.0, rows[0]  # chance is ln 10 = 2.30; measured 1.55
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["recipe"] == "finetune" and cfg["batch_size"] == 32 and cfg["warmup_epochs"] == 0
    _check_png(out / "curves.png")


# ----------------------------------------------------------------------------- recipes as data
class _Cfg:
    def __init__(self, **given):
        for name in R.RECIPE_FIELDS:
            setattr(self, name, given.get(name))


def test_auto_picks_the_recipe_by_dataset_size_and_init():
    assert R.choose_recipe("auto", 1_438, None)[0] is R.FINETUNE
    assert R.choose_recipe("auto", R.SMALL_DATASET, None)[0] is R.PAPER
    assert R.choose_recipe("auto", 1_281_167, "imagenet.pth")[0] is R.FINETUNE  # --init: fine-tuning
    assert R.choose_recipe("paper", 100, "x.pth") == (R.PAPER, "--recipe")  # asked for: no second-guessing
    assert set(R.PAPER.settings) == set(R.FINETUNE.settings) == set(R.RECIPE_FIELDS)


def test_given_options_win_and_a_recipe_warmup_scales_with_epochs():
    cfg = _Cfg(lr=5e-4, epochs=40)
    from_recipe, given = R.apply_recipe(cfg, R.FINETUNE)
    assert (cfg.lr, cfg.epochs, cfg.batch_size, cfg.crop_scale) == (5e-4, 40, 32, 0.5)
    assert cfg.warmup_epochs == 4  # the recipe's 1 of 10 epochs
    assert given == ["epochs 40", "lr 0.0005"]
    assert "warm-up epochs 4 (the recipe's 1 of 10, scaled to --epochs 40)" in from_recipe

    cfg = _Cfg(epochs=5)
    R.apply_recipe(cfg, R.PAPER)
    assert cfg.warmup_epochs == 1  # 10 of 100 -> 0.5, but a recipe that warms up keeps one epoch
    cfg = _Cfg(epochs=1, warmup_epochs=0)
    R.apply_recipe(cfg, R.PAPER)
    assert cfg.warmup_epochs == 0  # given: left alone


def test_help_shows_each_recipe_default(capsys):
    rc, out, _ = _run(capsys, ["train", "--help"])
    assert rc == 0
    flat = " ".join(out.split())
    assert "[paper: 0.08, finetune: 0.5]" in flat and "[paper: 100, finetune: 10]" in flat
    assert f"auto = finetune below {R.SMALL_DATASET:,} training images or with --init" in flat


# ----------------------------------------------------------------------------- zero-init residuals
def test_zero_init_last_starts_each_residual_block_as_the_identity():
    import dotcom_mobile.model as M
    from dotcom_mobile.model.dot_block import DoTBlock
    from dotcom_mobile.model.layers import InvertedResidual

    torch.manual_seed(0)
    model = M.create_model("dotcom_tiny", num_classes=4)
    scales = [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(w, torch.ones_like(w)) for w in scales)  # a new model has the reference init
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    model.zero_init_last()
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes  # checkpoints load either way
    model.train()
    dots = [m for m in model.modules() if isinstance(m, DoTBlock)]
    adds = [m for m in model.modules() if isinstance(m, InvertedResidual) and m.has_residual]
    assert len(dots) == 3 and len(adds) == 6  # stage 0 and the five stride-1 QIBs
    with torch.no_grad():
        for block in dots + adds:
            chans = block.conv_dw[0].in_channels if isinstance(block, DoTBlock) else block.conv_pwl[0].out_channels
            x = torch.randn(2, chans, 8, 8)
            torch.testing.assert_close(block(x), x)
    # A block without a residual path keeps its scale: zeroing it would cut the network in two.
    plain = [m for m in model.modules() if isinstance(m, InvertedResidual) and not m.has_residual]
    assert plain and all(torch.equal(m.conv_pwl[1].weight, torch.ones_like(m.conv_pwl[1].weight)) for m in plain)


# ----------------------------------------------------------------------------- fine-tuning
@pytest.fixture(scope="module")
def authors_checkpoint(tmp_path_factory, tiny_fixture) -> Path:
    """A 1000-class DoTCoM-Tiny in the authors' key layout (base., QIB., DoT., fc.), as their code saves it."""
    path = tmp_path_factory.mktemp("authors") / "dotcom_tiny_authors.pth"
    torch.save(tiny_fixture["state_dict"], path)
    return path


@pytest.fixture(scope="module")
def shapes32(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes32"), train_per_class=8, val_per_class=4, size=32)


def test_finetune_from_the_authors_checkpoint_with_a_frozen_backbone(authors_checkpoint, tiny_fixture, shapes32,
                                                                        tmp_path, capsys):
    from dotcom_mobile.model import checkpoint_filter_fn

    ref = checkpoint_filter_fn(tiny_fixture["state_dict"])
    out = tmp_path / "ft"
    argv = ["train", "--model", "dotcom_tiny", "--data", str(shapes32), "--init", str(authors_checkpoint),
            "--freeze-epochs", "1", "--epochs", "2", "--batch-size", "8", "--input-size", "32", *QUIET,
            "--out", str(out)]
    rc, stdout, err = _run(capsys, [*argv, "--stop-at-epoch", "1"])
    assert rc == 0, err
    assert stdout.startswith("Recipe finetune (auto: --init given): ")
    assert f"--init {authors_checkpoint}: new classifier head for 4 classes (the checkpoint's: 1000 classes)" in stdout
    assert "Backbone frozen for the first 1 epoch(s)" in stdout
    after1 = _load(out / "last.pth")["state_dict"]
    assert after1["head.weight"].shape == (4, 384)
    params = [k for k in ref if not k.startswith("head.") and "running" not in k and "num_batches" not in k]
    for k in params:  # frozen: the authors' weights, bit for bit
        assert torch.equal(after1[k], ref[k]), k
    # BatchNorm statistics adapt to the new images while the weights are frozen.
    assert not torch.equal(after1["stem.1.running_mean"], ref["stem.1.running_mean"])

    rc, stdout, err = _run(capsys, ["train", "--resume", str(out / "last.pth"), *QUIET])
    assert rc == 0, err
    assert "Backbone frozen" not in stdout  # epoch 2 is past --freeze-epochs 1
    after2 = _load(out / "last.pth")["state_dict"]
    moved = [k for k in params if not torch.equal(after2[k], ref[k])]
    assert len(moved) > 0.9 * len(params)
    assert [r["epoch"] for r in _rows(out)] == ["1", "2"]
    _check_png(out / "curves.png")


def test_fine_tuning_mistakes_are_one_line(shapes32, authors_checkpoint, tmp_path, capsys):
    def error(*extra: str) -> str:
        return one_error_line(capsys, ["train", "--model", "dotcom_tiny", "--data", str(shapes32), "--input-size",
                                       "32", "--batch-size", "8", *QUIET, "--out", str(tmp_path / "o"), *extra])

    assert "--freeze-epochs needs --init" in error("--freeze-epochs", "1")
    assert "--freeze-epochs 10 must be in 0..9 for --epochs 10" in error("--init", str(authors_checkpoint),
                                                                         "--freeze-epochs", "10")
    assert "--crop-scale must be in (0, 1]" in error("--crop-scale", "0")
    assert "--hflip must be in [0, 1]" in error("--hflip", "2")
    assert error("--model", "dotcom_small", "--init", str(authors_checkpoint)) == (
        f"Error: --init {authors_checkpoint} holds dotcom_tiny weights (1000 classes), not dotcom_small: "
        "use --model dotcom_tiny")
    assert not (tmp_path / "o").exists()  # nothing half-made


# ----------------------------------------------------------------------------- the anchor comparison
def test_compare_trains_a_timm_cnn_by_the_same_recipe(shapes32, tmp_path):
    from dotcom_mobile.train.compare import compare_models

    lines: list[str] = []
    runs = compare_models(["dotcom_tiny", "mobilenetv2_050"], shapes32, tmp_path / "cmp", echo=lines.append,
                          epochs=1, batch_size=8, input_size=32, progress=False)
    assert list(runs) == ["dotcom_tiny", "mobilenetv2_050"]
    assert lines[0].startswith("dotcom_tiny (") and "zero-init residuals on" in lines[0]
    assert lines[2].startswith("mobilenetv2_050 (0.69M params; zero-init residuals n/a")
    for name in runs:
        assert "Recipe finetune (auto: 32 training images" in next(line for line in lines if line.startswith(name))
    rows = list(csv.DictReader((tmp_path / "cmp" / "compare.csv").open()))
    assert [(r["model"], r["epoch"]) for r in rows] == [("dotcom_tiny", "1"), ("mobilenetv2_050", "1")]
    assert all(0 <= float(r["top1"]) <= 1 and float(r["train_loss"]) > 0 for r in rows)
    _check_png(tmp_path / "cmp" / "compare.png")


def test_a_run_from_before_recipes_resumes_with_the_paper_values(shapes32, tmp_path, capsys):
    out = tmp_path / "old"
    rc, _, err = _run(capsys, ["train", "--model", "dotcom_tiny", "--data", str(shapes32), "--recipe", "paper",
                               "--epochs", "2", "--warmup-epochs", "0", "--batch-size", "8", "--input-size", "32",
                               *QUIET, "--out", str(out), "--stop-at-epoch", "1"])
    assert rc == 0, err
    ckpt = _load(out / "last.pth")
    for name in ("recipe", "crop_scale", "hflip", "zero_init_last", "freeze_epochs"):  # fields added by recipes
        del ckpt["config"][name]
    torch.save(ckpt, out / "last.pth")
    rc, stdout, err = _run(capsys, ["train", "--resume", str(out / "last.pth"), *QUIET])
    assert rc == 0, err
    assert stdout.startswith("Recipe paper (the resumed run's): epochs 2, batch 8, lr 0.001, ")
    assert "crop scale 0.08, hflip 0.5" in stdout
    assert _load(out / "last.pth")["config"]["recipe"] == "paper"
