"""The training run behind ``dotcom-mobile train``: a recipe with timm's parts.

Always: AdamW (no decay on norms and biases), a cosine schedule stepped every optimizer
step after a linear warm-up, minimum lr = lr * 1e-3, RandomResizedCrop + horizontal flip
for training, resize / center crop (``crop_pct``) for validation, ImageNet mean/std.
The numbers (epochs, batch, lr, crop scale, ...) come from a recipe (:mod:`.recipes`):
``paper`` is the paper's ImageNet one, ``finetune`` the one for small datasets and
``--init`` weights; any option the user gives wins. Optional: RandAugment,
mixup/cutmix, label smoothing, model EMA, a frozen backbone for the first epochs.

Beside the checkpoints: ``log.csv``, ``curves.png`` (loss and top-1 per epoch, redrawn
after every epoch) and ``tensorboard/``.

One code path for one CPU and for ``torchrun`` on many GPUs or nodes: under torchrun
the process group is initialised from the environment (nccl on CUDA, gloo on CPU),
the model is wrapped in DDP and rank 0 alone logs and writes checkpoints.
``batch_size`` is the *global* batch, split over the processes, so the same command
is the same recipe at any scale.

Resumability: every epoch writes ``last.pth`` atomically with model, optimizer,
scheduler, scaler, EMA, epoch, global step, best metric and the config. The random
state is re-seeded from ``(seed, epoch, rank)`` at the start of each epoch and the
sampler order depends only on ``(seed, epoch)``, so a resumed run takes the same
batches and the same learning rates as an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from dotcom_mobile.model import (
    DotcomError, PreprocessConfig, check_input_size, create_model, read_checkpoint, resolve_model_name, save_checkpoint,
)

from . import data as D
from . import recipes as R
from .loop import evaluate, recalibrate_batchnorm, train_one_epoch

PAPER_CROP_PCT = 256 / 288
DEFAULT_OUT_ROOT = Path("dotcom_mobile_out") / "train"

# Fields of the current invocation that a resumed run uses; everything else is the recipe
# and comes from the checkpoint (``data``/``out`` too, unless given again).
RUN_CONTROL_FIELDS = ("data", "out", "workers", "stop_at_epoch", "save_rank_copies", "progress")


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in each checkpoint as ``config``.

    Fields left ``None`` are the recipe's (:data:`.recipes.RECIPE_FIELDS`), filled by
    :func:`resolve_recipe` once the dataset size is known; a stored config has none left.
    """

    model: str
    data: str
    recipe: str = "auto"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: int | None = None
    min_lr_ratio: float = 1e-3
    input_size: int = 256
    crop_pct: float = PAPER_CROP_PCT
    crop_scale: float | None = None
    hflip: float | None = None
    randaugment: str | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    smoothing: float | None = None
    ema: bool = False
    ema_decay: float = 0.9998
    recalibrate_bn: int | None = None
    zero_init_last: bool | None = None
    clip_grad: float | None = None
    seed: int = 0
    init: str | None = None
    freeze_epochs: int = 0
    workers: int | None = None
    out: str | None = None
    stop_at_epoch: int | None = None
    save_rank_copies: bool = False
    progress: bool = True

    def validate(self, num_train: int | None = None, *, check_model: bool = True) -> None:
        """One-line errors for impossible settings; ``num_train`` (training images) checks the batch.

        ``check_model=False`` lets :mod:`.compare` train a non-DoTCoM anchor by the same recipe.
        """
        if check_model:
            self.model = resolve_model_name(self.model)
        check_input_size(self.input_size, self.input_size)
        if self.recipe not in R.RECIPES:
            raise DotcomError(f"--recipe must be one of {', '.join(R.RECIPE_CHOICES)}, not {self.recipe!r}")
        unresolved = [f for f in R.RECIPE_FIELDS if getattr(self, f) is None]
        if unresolved:  # a programming error, not the user's
            raise ValueError(f"TrainConfig fields {unresolved} are unset: call resolve_recipe() first")
        if self.epochs < 1:
            raise DotcomError(f"--epochs must be at least 1, not {self.epochs}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise DotcomError(
                f"--warmup-epochs {self.warmup_epochs} must be in 0..{self.epochs - 1} for --epochs {self.epochs}"
            )
        if self.batch_size < 1:
            raise DotcomError(f"--batch-size must be at least 1, not {self.batch_size}")
        if num_train is not None and num_train < self.batch_size:
            raise DotcomError(
                f"{self.data}/train has {num_train} images, fewer than one batch of {self.batch_size}: lower --batch-size"
            )
        if self.lr <= 0:
            raise DotcomError(f"--lr must be positive, not {self.lr}")
        if not 0 < self.crop_pct <= 1:
            raise DotcomError(f"--crop-pct must be in (0, 1], not {self.crop_pct}")
        if not 0 < self.crop_scale <= 1:
            raise DotcomError(f"--crop-scale must be in (0, 1], not {self.crop_scale}")
        if not 0 <= self.hflip <= 1:
            raise DotcomError(f"--hflip must be in [0, 1], not {self.hflip}")
        if not 0 <= self.smoothing < 1:
            raise DotcomError(f"--smoothing must be in [0, 1), not {self.smoothing}")
        if self.recalibrate_bn < 0:
            raise DotcomError(f"--recalibrate-bn must be 0 or more batches, not {self.recalibrate_bn}")
        if not 0 <= self.freeze_epochs < self.epochs:
            raise DotcomError(
                f"--freeze-epochs {self.freeze_epochs} must be in 0..{self.epochs - 1} for --epochs {self.epochs}"
            )
        if self.freeze_epochs and not self.init:
            raise DotcomError("--freeze-epochs needs --init: a frozen random backbone has nothing to teach the head")
        if self.stop_at_epoch is not None and not 1 <= self.stop_at_epoch <= self.epochs:
            raise DotcomError(f"--stop-at-epoch must be in 1..{self.epochs}, not {self.stop_at_epoch}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What a run produced; ``config`` is the effective one (the checkpoint's on resume)."""

    out_dir: Path
    last: Path
    best: Path
    best_top1: float
    epoch: int
    step: int
    config: TrainConfig
    is_main: bool = True
    history: list[dict[str, float]] = field(default_factory=list)


# ----------------------------------------------------------------------------- distributed
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def setup_distributed() -> Dist:
    """Read torchrun's environment; initialise the process group when there are peers."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(rank, world, local_rank, device)


def _sync_buffers(model: nn.Module, dist: Dist) -> None:
    """Make BatchNorm statistics identical on every rank (mean of floats, rank 0's ints).

    DDP broadcasts rank 0's buffers at the *start* of each forward, so after the last
    step every other rank holds statistics that also saw its own last batch.
    """
    if not dist.enabled:
        return
    for b in model.buffers():
        if b.is_floating_point():
            torch.distributed.all_reduce(b)
            b /= dist.world
        torch.distributed.broadcast(b, 0)


# ----------------------------------------------------------------------------- helpers
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return seed * 1_000_003 + epoch * 1009 + rank


def default_out_dir(model: str) -> Path:
    """``dotcom_mobile_out/train/<model>``, then ``<model>2``, ... (never overwrite a run)."""
    base = DEFAULT_OUT_ROOT / model
    out, n = base, 1
    while out.exists() and any(out.iterdir()):
        n += 1
        out = base.with_name(f"{model}{n}")
    return out


def _default_workers(dist: Dist) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_proc = cpus // int(os.environ.get("LOCAL_WORLD_SIZE", dist.world if dist.enabled else 1))
    return max(0, min(8, per_proc - 1))


def _load_init_weights(model: nn.Module, path: str, say: Callable[[str], None]) -> None:
    """Start from pretrained weights (ours or the authors'); a head of another class count is left new.

    The usual mobile case: ImageNet weights, fine-tuned on a few classes of one's own.
    """
    from dotcom_mobile.model import checkpoint_filter_fn
    from dotcom_mobile.model.checkpoint import describe_state_dict, load_state_dict_checked

    state = checkpoint_filter_fn(read_checkpoint(path))
    name = model.dotcom_meta["model"]
    variant, classes = describe_state_dict(state)
    if variant is not None and variant != name:
        raise DotcomError(f"--init {path} holds {variant} weights ({classes} classes), not {name}: use --model {variant}")
    own = model.state_dict()
    head = [k for k in own if k.startswith("head.")]
    if any(k not in state or tuple(state[k].shape) != tuple(own[k].shape) for k in head):
        had = f"{classes} classes" if classes is not None else "no head"
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
        state.update({k: own[k] for k in head})
        say(f"--init {path}: new classifier head for {model.num_classes} classes (the checkpoint's: {had}); "
            f"the backbone is loaded")
    load_state_dict_checked(model, state, name, str(path))


def resolve_recipe(cfg: TrainConfig, num_train: int, *, resumed: bool = False) -> str:
    """Choose the recipe, fill the fields the user left unset; returns the line to print."""
    if resumed:  # the stored config; a run from before a field existed gets its recipe's value
        R.apply_recipe(cfg, R.RECIPES.get(cfg.recipe, R.PAPER))
        values = ", ".join(f"{R.LABELS[n]} {R.format_value(getattr(cfg, n))}" for n in R.RECIPE_FIELDS)
        return f"Recipe {cfg.recipe} (the resumed run's): {values}"
    recipe, why = R.choose_recipe(cfg.recipe, num_train, cfg.init)
    cfg.recipe = recipe.name
    from_recipe, given = R.apply_recipe(cfg, recipe)
    line = f"Recipe {recipe.name} ({why}): " + (", ".join(from_recipe) or "nothing left to set")
    return line + (f"; given: {', '.join(given)}" if given else "")


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    """Train only the classifier (``--freeze-epochs``); BatchNorm statistics still adapt.

    The parameters of a frozen backbone get no gradient (the optimizer skips them, weight
    decay included), and backward stops at the head, so a frozen epoch costs little more
    than a forward pass. The running statistics keep updating on the user's images: the
    ImageNet ones describe other images, and the head should learn on what eval will see.
    """
    head = {id(p) for p in model.get_classifier().parameters()}
    for p in model.parameters():
        p.requires_grad_(not frozen or id(p) in head)


def _config_from_resume(cfg: TrainConfig, ckpt: dict[str, Any], explicit: set[str]) -> TrainConfig:
    """The checkpoint's recipe plus the run-control fields the user gave now."""
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        raise DotcomError("checkpoint has no training state (config); --resume needs a last.pth written by train")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    merged = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    if "recipe" not in saved:  # a run from before recipes: the paper's was the only one
        merged.recipe = "paper"
    mine = cfg.to_dict()
    for name in RUN_CONTROL_FIELDS:  # this invocation's, whether typed or default...
        if name not in ("data", "out") or name in explicit:  # ...but the run's data and folder unless given
            setattr(merged, name, mine[name])
    for name in explicit:
        if name not in RUN_CONTROL_FIELDS and name in known and mine[name] != getattr(merged, name):
            flag = "--" + name.replace("_", "-")
            raise DotcomError(
                f"{flag} {mine[name]} differs from the resumed run's {getattr(merged, name)}; "
                f"a resumed run keeps its recipe (drop {flag})"
            )
    return merged


class _Logger:
    """CSV, curves.png and TensorBoard on rank 0; appends when a run resumes."""

    FIELDS = ("epoch", "step", "lr", "train_loss", "val_loss", "top1", "top5", "best_top1", "images_per_s", "seconds")

    def __init__(self, out: Path, enabled: bool, title: str = "", num_classes: int | None = None) -> None:
        self.enabled = enabled
        self.num_classes = num_classes
        self.csv_path = out / "log.csv"
        self.png_path = out / "curves.png"
        self.title = title
        self.tb = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))

    def log(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.FIELDS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        from .plots import plot_curves, read_log

        # From the CSV, not this process's rows: a resumed run's picture shows the whole run.
        plot_curves({"": read_log(self.csv_path)}, self.png_path, self.title, self.num_classes)
        for key in ("lr", "train_loss", "val_loss", "top1", "top5", "images_per_s"):
            if key in row:
                self.tb.add_scalar(key, row[key], int(row["epoch"]))
        self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# ----------------------------------------------------------------------------- recipe parts
# The pieces of a run that train_model and train.compare share, so that a comparison
# trains every model with the very code a user's `train` runs.
@dataclass
class Loaders:
    train: Any
    val: Any
    recal: Any = None  # unaugmented, shuffled training images for BatchNorm re-estimation


def make_loaders(cfg: TrainConfig, train_ds: D.ImageFolderDataset, preprocess: PreprocessConfig, *,
                 dist: Dist, workers: int) -> Loaders:
    """The recipe's augmentation on ``train_ds``, the shipped preprocessing on val."""
    classes = train_ds.class_names
    cuda = dist.device.type == "cuda"
    per_proc_batch = cfg.batch_size // dist.world
    train_ds.transform = D.train_transform(preprocess, auto_augment=cfg.randaugment, hflip=cfg.hflip,
                                           scale=(cfg.crop_scale, 1.0))
    val_ds = D.ImageFolderDataset(Path(cfg.data) / "val", classes, D.eval_transform(preprocess))
    loader_kw = dict(workers=workers, rank=dist.rank, world=dist.world, seed=cfg.seed, pin_memory=cuda)
    loaders = Loaders(D.make_loader(train_ds, batch_size=per_proc_batch, train=True, **loader_kw),
                      D.make_loader(val_ds, batch_size=per_proc_batch, train=False, **loader_kw))
    if cfg.recalibrate_bn:
        recal_ds = D.ImageFolderDataset(Path(cfg.data) / "train", classes, D.eval_transform(preprocess))
        # Shuffled (the training sampler, fixed order): ImageFolder is sorted by class, and
        # batches of one class each average to the within-class variance only, which
        # leaves the eval-mode model far worse than the weights are.
        loaders.recal = D.make_loader(recal_ds, batch_size=per_proc_batch, train=True, **loader_kw)
    return loaders


@dataclass
class Optimization:
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: nn.Module
    mixup_fn: Callable | None = None
    scaler: torch.amp.GradScaler | None = None
    amp_dtype: torch.dtype | None = None


def make_optimization(cfg: TrainConfig, model: nn.Module, steps_per_epoch: int, num_classes: int, *,
                      dist: Dist) -> Optimization:
    """timm's AdamW (no decay on norms/biases), per-step cosine with warm-up, the loss; AMP on CUDA."""
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    cuda = dist.device.type == "cuda"
    optimizer = create_optimizer_v2(model, opt="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    min_lr = cfg.lr * cfg.min_lr_ratio
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=(cfg.epochs - cfg.warmup_epochs) * steps_per_epoch,
        lr_min=min_lr,
        warmup_t=cfg.warmup_epochs * steps_per_epoch,
        warmup_lr_init=min_lr,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    mixup_fn = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        from timm.data import Mixup

        if (cfg.batch_size // dist.world) % 2:
            raise DotcomError(f"mixup/cutmix need an even batch per process, not {cfg.batch_size // dist.world}")
        mixup_fn = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.smoothing,
                         num_classes=num_classes)
        loss_fn: nn.Module = SoftTargetCrossEntropy()
    elif cfg.smoothing > 0:
        loss_fn = LabelSmoothingCrossEntropy(smoothing=cfg.smoothing)
    else:
        loss_fn = nn.CrossEntropyLoss()
    return Optimization(optimizer, scheduler, loss_fn, mixup_fn,
                        torch.amp.GradScaler("cuda") if cuda else None, torch.float16 if cuda else None)


def train_and_validate(net: nn.Module, model: nn.Module, loaders: Loaders, parts: Optimization, cfg: TrainConfig, *,
                       dist: Dist, epoch: int, step: int, ema: Any = None) -> tuple[dict, dict, nn.Module]:
    """One epoch: train ``net`` (``model`` or its DDP wrapper), re-estimate BatchNorm, validate.

    Returns the training stats, the validation metrics and the module they score (the
    EMA when there is one).
    """
    cuda = dist.device.type == "cuda"
    stats = train_one_epoch(
        net, loaders.train, parts.optimizer, loss_fn=parts.loss_fn, device=dist.device, scheduler=parts.scheduler,
        epoch=epoch, step=step, scaler=parts.scaler, ema=ema, mixup_fn=parts.mixup_fn, amp_dtype=parts.amp_dtype,
        channels_last=cuda, clip_grad=cfg.clip_grad, progress=cfg.progress,
    )
    _sync_buffers(model, dist)
    if loaders.recal is not None:
        for m in (model, *((ema.module,) if ema is not None else ())):  # EMA of stale statistics is no better
            recalibrate_batchnorm(m, loaders.recal, device=dist.device, max_batches=cfg.recalibrate_bn,
                                  channels_last=cuda)
            _sync_buffers(m, dist)
    eval_kw = dict(device=dist.device, progress=cfg.progress, channels_last=cuda, amp_dtype=parts.amp_dtype)
    metrics = evaluate(model, loaders.val, **eval_kw)
    if ema is None:
        return stats, metrics, model
    return stats, {**evaluate(ema.module, loaders.val, **eval_kw), "model_top1": metrics["top1"]}, ema.module


# ----------------------------------------------------------------------------- the run
def train_model(
    cfg: TrainConfig,
    *,
    resume: str | Path | None = None,
    explicit: set[str] | None = None,
    echo: Callable[[str], None] = print,
) -> TrainResult:
    """Train (or resume) a run; returns where its checkpoints are and the best top-1.

    ``explicit`` names the config fields the user set on the command line; on
    ``resume`` only those in :data:`RUN_CONTROL_FIELDS` may differ from the checkpoint.
    """
    dist = setup_distributed()
    say = echo if dist.is_main else (lambda _msg: None)
    ckpt = None
    if resume is not None:
        ckpt = read_checkpoint(resume)
        if "optimizer" not in ckpt or "step" not in ckpt:
            raise DotcomError(f"{resume} holds weights only, not a training state: resume from the run's last.pth")
        cfg = _config_from_resume(cfg, ckpt, set(explicit or ()))
        if "out" not in (explicit or ()):
            cfg.out = str(Path(resume).parent)
    resolve_model_name(cfg.model)
    check_input_size(cfg.input_size, cfg.input_size)
    classes = D.check_image_folder(cfg.data)
    train_ds = D.ImageFolderDataset(Path(cfg.data) / "train", classes)
    recipe_line = resolve_recipe(cfg, len(train_ds), resumed=ckpt is not None)
    cfg.validate(len(train_ds))
    if cfg.batch_size % dist.world:
        raise DotcomError(f"--batch-size {cfg.batch_size} is the global batch: it must divide by {dist.world} processes")
    say(recipe_line)
    workers = _default_workers(dist) if cfg.workers is None else cfg.workers

    # Model, with the metadata every later step reads from the checkpoint.
    _seed_everything(cfg.seed)
    cuda = dist.device.type == "cuda"
    model = create_model(cfg.model, num_classes=len(classes))
    preprocess = PreprocessConfig((3, cfg.input_size, cfg.input_size), crop_pct=cfg.crop_pct)
    model.dotcom_meta.update(class_names=list(classes), preprocess=preprocess)
    if ckpt is not None:
        if ckpt.get("model") != cfg.model or list(ckpt.get("class_names") or []) != list(classes):
            raise DotcomError(
                f"checkpoint {resume} is for {ckpt.get('model')} on classes {ckpt.get('class_names')}, "
                f"not {cfg.model} on the {len(classes)} classes of {cfg.data}"
            )
        model.load_state_dict(ckpt["state_dict"])
    elif cfg.init:
        _load_init_weights(model, cfg.init, say)
    elif cfg.zero_init_last:
        model.zero_init_last()
    model.to(dist.device)
    if cuda:
        model.to(memory_format=torch.channels_last)

    # Data.
    loaders = make_loaders(cfg, train_ds, preprocess, dist=dist, workers=workers)
    train_loader, val_ds = loaders.train, loaders.val.dataset
    steps_per_epoch = len(train_loader)

    # Output folder (after every input check: a failed start leaves nothing behind).
    # Rank 0 decides; the others only write debug copies there.
    out = Path(cfg.out) if cfg.out else default_out_dir(cfg.model)
    if dist.enabled:
        box = [str(out)]
        torch.distributed.broadcast_object_list(box, src=0)
        out = Path(box[0])
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
    cfg.out = str(out)

    parts = make_optimization(cfg, model, steps_per_epoch, len(classes), dist=dist)
    optimizer, scheduler, scaler = parts.optimizer, parts.scheduler, parts.scaler

    ema = None
    if cfg.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=cfg.ema_decay)

    start_epoch, step, best_top1 = 0, 0, -1.0
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        if ema is not None and ckpt.get("ema"):
            ema.module.load_state_dict(ckpt["ema"])
        start_epoch, step, best_top1 = int(ckpt["epoch"]), int(ckpt["step"]), float(ckpt.get("best_top1", -1.0))
        say(f"Resuming {resume}: epoch {start_epoch}/{cfg.epochs}, step {step}, lr {optimizer.param_groups[0]['lr']:.3e}")

    def wrap(frozen: bool) -> nn.Module:
        # DDP registers the parameters that need gradients when it is built: rebuild it
        # when --freeze-epochs ends (all ranks switch at the same epoch).
        set_backbone_frozen(model, frozen)
        if not dist.enabled:
            return model
        return nn.parallel.DistributedDataParallel(model, device_ids=[dist.local_rank] if cuda else None)

    frozen = start_epoch < cfg.freeze_epochs
    net = wrap(frozen)

    if dist.is_main:
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    say(f"Training {cfg.model} on {len(classes)} classes ({len(train_ds)} train / {len(val_ds)} val images) at "
        f"{cfg.input_size}x{cfg.input_size}, {cfg.epochs} epoch(s) of {steps_per_epoch} steps, global batch "
        f"{cfg.batch_size} on {dist.world} x {dist.device.type}; writing {out}")
    if frozen:
        say(f"Backbone frozen for the first {cfg.freeze_epochs} epoch(s): only the classifier head trains")

    end_epoch = cfg.stop_at_epoch or cfg.epochs
    if start_epoch >= end_epoch:
        say(f"The run is already at epoch {start_epoch} of {cfg.epochs}: nothing to train")
    logger = _Logger(out, dist.is_main, f"{cfg.model} on {Path(cfg.data).name or cfg.data} ({cfg.recipe} recipe)",
                     len(classes))
    last, best = out / "last.pth", out / "best.pth"
    history: list[dict[str, float]] = []
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, end_epoch):
            t0 = time.perf_counter()
            _seed_everything(_epoch_seed(cfg.seed, epoch, dist.rank))
            train_loader.sampler.set_epoch(epoch)
            if frozen and epoch >= cfg.freeze_epochs:
                frozen = False
                net = wrap(frozen)
                say(f"epoch {epoch + 1}: backbone unfrozen, the whole network trains")
            stats, metrics, scored = train_and_validate(net, model, loaders, parts, cfg, dist=dist, epoch=epoch,
                                                        step=step, ema=ema)
            step = stats["step"]
            improved = metrics["top1"] > best_top1
            best_top1 = max(best_top1, metrics["top1"])
            row = {
                "epoch": epoch + 1, "step": step, "lr": stats["lr"], "train_loss": stats["loss"],
                "val_loss": metrics["loss"], "top1": metrics["top1"], "top5": metrics["top5"], "best_top1": best_top1,
                "images_per_s": stats["images_per_s"] * dist.world, "seconds": time.perf_counter() - t0,
            }
            history.append(row)
            if dist.is_main:
                state = {
                    "epoch": epoch + 1, "step": step, "best_top1": best_top1, "top1": metrics["top1"],
                    "top5": metrics["top5"], "val_loss": metrics["loss"], "config": cfg.to_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "ema": ({k: v.detach().cpu() for k, v in ema.module.state_dict().items()}
                            if ema is not None else None),
                }
                save_checkpoint(last, model, extra=state)
                if improved:
                    save_checkpoint(best, scored, extra={k: state[k] for k in (
                        "epoch", "step", "best_top1", "top1", "top5", "val_loss", "config")} | {"ema_weights": ema is not None})
                logger.log(row)
                say(f"epoch {epoch + 1}/{cfg.epochs}  loss {stats['loss']:.4f}  lr {stats['lr']:.3e}  "
                    f"val top-1 {100 * metrics['top1']:.2f}%  top-5 {100 * metrics['top5']:.2f}%  "
                    f"best {100 * best_top1:.2f}%  {row['images_per_s']:.1f} img/s")
            dist.barrier()
        if cfg.save_rank_copies:  # debugging aid: does every replica hold the same weights?
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / f"rank{dist.rank}.pth")
            dist.barrier()
    finally:
        logger.close()
    epochs_done = history[-1]["epoch"] if history else start_epoch
    return TrainResult(out, last, best, best_top1, int(epochs_done), step, cfg, dist.is_main, history)


def cleanup_distributed() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
