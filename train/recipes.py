"""Training recipes as data: what ``--recipe paper`` and ``--recipe finetune`` set.

The paper's recipe (ImageNet-1k: 100 epochs, 10 of them warm-up, RandomResizedCrop
down to 8% of the image, the reference initialisation) is right for a million images.
On a few thousand it is the wrong default: on scikit-learn's digits at 64x64 it
spends its first three epochs at chance (``train/README.md`` has the curves). The
``finetune`` recipe is for datasets of that size, from scratch or from ``--init``
weights:

* a milder crop (``crop_scale`` 0.5: at 64x64 an 8% crop of a digit is a stroke);
* residual branches start at zero (``zero_init_last``), so the network learns from
  the first steps instead of after an epoch at chance;
* a batch of 32 (more optimizer steps per epoch when an epoch is 1,400 images) and a
  one-epoch warm-up;
* BatchNorm statistics re-estimated before each validation (``recalibrate_bn``):
  early on the weights move faster than the running averages follow, and the
  eval-mode model is far worse than the weights are.

Every value here is a :class:`~dotcom_mobile.train.trainer.TrainConfig` field; an
option given on the command line wins over the recipe. ``auto`` (the default) picks
``finetune`` for fewer than :data:`SMALL_DATASET` training images or with ``--init``,
``paper`` otherwise. Standard library only: ``--help`` reads this without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

# Below this many training images `auto` means `finetune` (ImageNet-1k has 1.28M).
SMALL_DATASET = 20_000


@dataclass(frozen=True)
class Recipe:
    """A named set of TrainConfig values."""

    name: str
    summary: str
    settings: Mapping[str, Any]


PAPER = Recipe("paper", "the paper's ImageNet-1k recipe", MappingProxyType({
    "epochs": 100, "batch_size": 128, "lr": 1e-3, "weight_decay": 5e-3, "warmup_epochs": 10,
    "crop_scale": 0.08, "hflip": 0.5, "smoothing": 0.0, "recalibrate_bn": 0, "zero_init_last": False,
}))
FINETUNE = Recipe("finetune", "small datasets (thousands of images) and fine-tuning", MappingProxyType({
    "epochs": 10, "batch_size": 32, "lr": 2e-3, "weight_decay": 5e-3, "warmup_epochs": 1,
    "crop_scale": 0.5, "hflip": 0.5, "smoothing": 0.0, "recalibrate_bn": 8, "zero_init_last": True,
}))
RECIPES: Mapping[str, Recipe] = MappingProxyType({r.name: r for r in (PAPER, FINETUNE)})
RECIPE_CHOICES = ("auto", *RECIPES)
RECIPE_FIELDS = tuple(PAPER.settings)

# How the start-of-run line and --help name each field.
LABELS = {
    "epochs": "epochs", "batch_size": "batch", "lr": "lr", "weight_decay": "weight decay",
    "warmup_epochs": "warm-up epochs", "crop_scale": "crop scale", "hflip": "hflip", "smoothing": "smoothing",
    "recalibrate_bn": "BN re-estimation batches", "zero_init_last": "zero-init residuals",
}


def choose_recipe(requested: str | None, num_train: int, init: str | None) -> tuple[Recipe, str]:
    """The recipe to use and why (for the start-of-run line)."""
    if requested and requested != "auto":
        return RECIPES[requested], "--recipe"
    if init:
        return FINETUNE, "auto: --init given"
    if num_train < SMALL_DATASET:
        return FINETUNE, f"auto: {num_train:,} training images, fewer than {SMALL_DATASET:,}"
    return PAPER, f"auto: {num_train:,} training images"


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def help_defaults(field: str) -> str:
    """``[paper: 1e-3, finetune: 2e-3]`` for an option's --help."""
    return "[" + ", ".join(f"{r.name}: {format_value(r.settings[field])}" for r in RECIPES.values()) + "]"


def apply_recipe(cfg: Any, recipe: Recipe) -> tuple[list[str], list[str]]:
    """Fill the fields of ``cfg`` left ``None`` from ``recipe``; return (recipe's, user's) as "label value".

    A warm-up the recipe sets is scaled when ``--epochs`` is given: the recipe's share of
    the run (at least one epoch if it warms up at all), always leaving one epoch of cosine.
    """
    from_recipe, given = [], []
    warmup_from_recipe = cfg.warmup_epochs is None
    for name in RECIPE_FIELDS:
        value = getattr(cfg, name)
        if value is None:
            setattr(cfg, name, recipe.settings[name])
            from_recipe.append(name)
        else:
            given.append(name)
    notes = {}
    if warmup_from_recipe and "epochs" in given:
        w, e = recipe.settings["warmup_epochs"], recipe.settings["epochs"]
        cfg.warmup_epochs = max(0, min(cfg.epochs - 1, max(1 if w else 0, round(w * cfg.epochs / e))))
        if cfg.warmup_epochs != w:
            notes["warmup_epochs"] = f" (the recipe's {w} of {e}, scaled to --epochs {cfg.epochs})"

    def show(names: list[str]) -> list[str]:
        return [f"{LABELS[n]} {format_value(getattr(cfg, n))}{notes.get(n, '')}" for n in names]

    return show(from_recipe), show(given)
