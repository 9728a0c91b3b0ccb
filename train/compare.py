"""Train several models by one recipe and draw their curves together: is it the model or the recipe?

The sanity anchor for a DoTCoM result on a new dataset is a plain CNN of similar size
trained the same way. ``dotcom-mobile train`` takes DoTCoM variants only (its
checkpoints feed quantize, export and the apps), so this module builds each model
itself - a DoTCoM variant through :func:`dotcom_mobile.model.create_model`, anything
else through ``timm.create_model`` - and then runs the trainer's own pieces
(:func:`.trainer.resolve_recipe`, :func:`.trainer.make_loaders`,
:func:`.trainer.make_optimization`, :func:`.trainer.train_and_validate`, the same
per-epoch seeding): the same augmentation, optimizer, schedule, loss, BatchNorm
re-estimation and evaluation as a user's run. It writes no checkpoints, only
``compare.csv`` (one row per model and epoch) and ``compare.png``, both after every epoch::

    python -m dotcom_mobile.train.compare --data digits/ --input-size 64 \\
        --models dotcom_tiny,mobilenetv2_050 --out compare_digits/

Recipe options (``--recipe``, ``--epochs``, ``--lr``, ...) mean what they mean for ``train``.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from .recipes import RECIPE_CHOICES

FIELDS = ("model", "epoch", "step", "lr", "train_loss", "val_loss", "top1", "top5", "seconds")


def build_model(name: str, num_classes: int) -> Any:
    """A DoTCoM variant (``dotcom_*``) or any timm model, untrained, with ``num_classes`` outputs."""
    from dotcom_mobile.model import VARIANTS, DotcomError, create_model

    if name in VARIANTS:
        return create_model(name, num_classes=num_classes)
    import timm

    if name not in timm.list_models():
        raise DotcomError(f"unknown model {name!r}: neither a DoTCoM variant nor a timm model")
    return timm.create_model(name, num_classes=num_classes)


def compare_models(
    models: Sequence[str],
    data: str | Path,
    out: str | Path,
    *,
    echo: Callable[[str], None] = print,
    **config: Any,
) -> dict[str, list[dict[str, Any]]]:
    """Train each of ``models`` by the recipe ``config`` describes (TrainConfig fields); returns the rows."""
    from dotcom_mobile.model import PreprocessConfig

    from . import data as D
    from .trainer import (
        Dist, TrainConfig, _epoch_seed, _seed_everything, make_loaders, make_optimization, resolve_recipe,
        train_and_validate,
    )

    classes = D.check_image_folder(data)
    out = Path(out)
    runs: dict[str, list[dict[str, Any]]] = {}
    dist = Dist()
    for name in models:
        cfg = TrainConfig(model=name, data=str(data), **config)
        train_ds = D.ImageFolderDataset(Path(data) / "train", classes)
        line = resolve_recipe(cfg, len(train_ds))
        cfg.validate(len(train_ds), check_model=False)
        _seed_everything(cfg.seed)
        model = build_model(name, len(classes))
        zero_init = "n/a (no zero_init_last)"
        if hasattr(model, "zero_init_last"):
            zero_init = "on" if cfg.zero_init_last else "off"
            if cfg.zero_init_last:
                model.zero_init_last()
        preprocess = PreprocessConfig((3, cfg.input_size, cfg.input_size), crop_pct=cfg.crop_pct)
        loaders = make_loaders(cfg, train_ds, preprocess, dist=dist, workers=cfg.workers or 0)
        parts = make_optimization(cfg, model, len(loaders.train), len(classes), dist=dist)
        params = sum(p.numel() for p in model.parameters())
        echo(f"{name} ({params / 1e6:.2f}M params; zero-init residuals {zero_init}). {line}")
        rows = runs.setdefault(name, [])
        step = 0
        for epoch in range(cfg.epochs):
            t0 = time.perf_counter()
            _seed_everything(_epoch_seed(cfg.seed, epoch, 0))
            loaders.train.sampler.set_epoch(epoch)
            stats, metrics, _ = train_and_validate(model, model, loaders, parts, cfg, dist=dist, epoch=epoch, step=step)
            step = stats["step"]
            rows.append({"model": name, "epoch": epoch + 1, "step": step, "lr": stats["lr"],
                         "train_loss": stats["loss"], "val_loss": metrics["loss"], "top1": metrics["top1"],
                         "top5": metrics["top5"], "seconds": time.perf_counter() - t0})
            echo(f"{name} epoch {epoch + 1}/{cfg.epochs}  loss {stats['loss']:.4f}  val loss {metrics['loss']:.4f}  "
                 f"val top-1 {100 * metrics['top1']:.2f}%")
            _write(out, runs, f"{Path(data).name}: {', '.join(runs)} ({cfg.recipe} recipe)", len(classes))
    return runs


def _write(out: Path, runs: dict[str, list[dict[str, Any]]], title: str, num_classes: int) -> None:
    from .plots import plot_curves

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".compare.csv.tmp"
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for rows in runs.values():
            w.writerows(rows)
    tmp.replace(out / "compare.csv")
    plot_curves(runs, out / "compare.png", title, num_classes)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data", required=True, type=click.Path(file_okay=False), metavar="DIR", help="ImageFolder root.")
@click.option("--models", default="dotcom_tiny,mobilenetv2_050", show_default=True,
              help="Comma-separated: DoTCoM variants and/or timm model names.")
@click.option("--out", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Folder for compare.csv and compare.png.")
@click.option("--recipe", type=click.Choice(RECIPE_CHOICES), default="auto", show_default=True,
              help="As for train: auto, paper or finetune.")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--warmup-epochs", type=int)
@click.option("--crop-scale", type=float)
@click.option("--hflip", type=float)
@click.option("--input-size", type=int, default=256, show_default=True)
@click.option("--crop-pct", type=float, default=256 / 288, show_default="256/288")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True)
def main(data: str, models: str, out: str, **config: Any) -> None:
    """Train MODELS on DATA with one recipe; write compare.csv and compare.png to OUT."""
    compare_models([m.strip() for m in models.split(",") if m.strip()], data, out, echo=click.echo,
                   progress=False, **config)


if __name__ == "__main__":
    from dotcom_mobile.model.errors import DotcomError

    try:
        main(standalone_mode=True)
    except DotcomError as e:
        raise SystemExit(f"Error: {e}") from None
