"""``dotcom-mobile train`` and ``dotcom-mobile eval``.

Only click and the standard library at module level: ``--help`` must not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .recipes import RECIPE_CHOICES, SMALL_DATASET, help_defaults

_PAPER_CROP_PCT = 256 / 288


def _explicit(ctx: click.Context) -> set[str]:
    """Options the user typed (not defaults): what a resumed run is asked to change."""
    from click.core import ParameterSource

    return {name for name in ctx.params
            if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}


@click.command("train", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--model", "model_name", metavar="NAME", help="Variant to train: dotcom_tiny, dotcom_small, dotcom_base or dotcom_large.")
@click.option("--data", type=click.Path(file_okay=False), metavar="DIR",
              help="ImageFolder root with train/<class>/* and val/<class>/*; the folder names become the class names.")
@click.option("--recipe", type=click.Choice(RECIPE_CHOICES), default="auto", show_default=True,
              help="Defaults for the options marked [paper: .., finetune: ..]: paper = the paper's ImageNet recipe, "
                   f"finetune = small datasets and --init; auto = finetune below {SMALL_DATASET:,} training images "
                   "or with --init, else paper. Options you give win.")
@click.option("--epochs", type=int, help="Length of the cosine schedule. " + help_defaults("epochs"))
@click.option("--batch-size", type=int,
              help="Global batch size, split over all torchrun processes (so a recipe means the same at any scale). "
                   + help_defaults("batch_size"))
@click.option("--lr", type=float, help="Peak learning rate of AdamW (min lr = lr * 1e-3). " + help_defaults("lr"))
@click.option("--weight-decay", type=float,
              help="AdamW weight decay (not on norms and biases). " + help_defaults("weight_decay"))
@click.option("--warmup-epochs", type=int,
              help="Linear warm-up from lr * 1e-3, then cosine (a recipe's scales with --epochs). "
                   + help_defaults("warmup_epochs"))
@click.option("--input-size", type=int, default=256, show_default=True,
              help="Training and validation resolution (multiple of 32); recorded in the checkpoint for export and the apps.")
@click.option("--crop-pct", type=float, default=_PAPER_CROP_PCT, show_default="256/288",
              help="Validation: resize to input-size / crop-pct, then center crop input-size.")
@click.option("--crop-scale", type=float, metavar="MIN",
              help="Training: RandomResizedCrop keeps MIN..1 of the image area. " + help_defaults("crop_scale"))
@click.option("--hflip", type=float, metavar="P",
              help="Training: horizontal flip probability (0 for text, digits, anything with a handedness). "
                   + help_defaults("hflip"))
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
              help="Run folder [default: dotcom_mobile_out/train/<model>, numbered if it exists; with --resume the checkpoint's folder].")
@click.option("--resume", type=click.Path(dir_okay=False), metavar="PATH",
              help="Continue a run from its last.pth: same recipe, epoch, step and learning rate.")
@click.option("--stop-at-epoch", type=int, metavar="N",
              help="Stop after epoch N of the schedule (time-limited jobs); continue later with --resume.")
@click.option("--init", type=click.Path(dir_okay=False), metavar="PATH",
              help="Start from these weights (e.g. ImageNet-pretrained; ours or the authors' format). "
                   "A classifier head for another number of classes is re-initialised.")
@click.option("--freeze-epochs", type=int, default=0, show_default=True, metavar="N",
              help="With --init: train only the new classifier head for the first N epochs, then everything.")
@click.option("--zero-init-last/--no-zero-init-last", default=None,
              help="From scratch: start each residual branch at zero (last BN scale 0) instead of the reference "
                   "init; learning starts in the first steps. " + help_defaults("zero_init_last"))
@click.option("--workers", type=int, help="Data-loading processes per training process [default: from the CPU count].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds weights, data order and augmentation.")
@click.option("--randaugment", is_flag=False, flag_value="rand-m9-mstd0.5", default=None, metavar="[POLICY]",
              help="RandAugment; alone it means timm's rand-m9-mstd0.5, or give a timm policy string "
                   "(avoid -inc1: its strongest posterize keeps 0 bits, which recent Pillow rejects).")
@click.option("--mixup", type=float, default=0.0, show_default=True, help="Mixup alpha (0 = off), e.g. 0.8.")
@click.option("--cutmix", type=float, default=0.0, show_default=True, help="CutMix alpha (0 = off), e.g. 1.0.")
@click.option("--smoothing", type=float, help="Label smoothing, e.g. 0.1. " + help_defaults("smoothing"))
@click.option("--ema/--no-ema", default=False, show_default=True,
              help="Keep an exponential moving average of the weights; it is validated and saved as best.pth.")
@click.option("--ema-decay", type=float, default=0.9998, show_default=True, help="EMA decay per optimizer step.")
@click.option("--recalibrate-bn", type=int, metavar="BATCHES",
              help="Before each validation, re-estimate BatchNorm statistics on this many unaugmented training "
                   "batches (short runs and fine-tuning need it; 0 = off). " + help_defaults("recalibrate_bn"))
@click.option("--clip-grad", type=float, default=None, help="Clip the gradient norm to this value.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
@click.option("--save-rank-copies", is_flag=True, hidden=True, help="Debug: every rank writes rank<N>.pth at the end.")
@click.pass_context
def train(ctx: click.Context, model_name: str | None, data: str | None, **opts):
    """Train a DoTCoM classifier on an ImageFolder, with a recipe that fits the data.

    \b
    Recipes (--recipe; the run prints which one and every value it uses):
      paper     the paper's ImageNet-1k recipe: 100 epochs (10 warm-up), batch 128, AdamW
                lr 1e-3, weight decay 5e-3, RandomResizedCrop down to 8% + flip
      finetune  thousands of images, from scratch or --init: 10 epochs (1 warm-up), batch 32,
                lr 2e-3, crop down to 50%, residual branches zero-initialised, BatchNorm
                statistics re-estimated before each validation
    Both: cosine schedule down to lr * 1e-3, validation at resize / center crop (--crop-pct),
    ImageNet mean/std; AMP and channels_last on CUDA. Each epoch writes last.pth (full
    training state) and, when validation top-1 improves, best.pth, atomically; log.csv,
    curves.png (loss and top-1 per epoch) and tensorboard/ beside them. Checkpoints record
    class names and input size: quantize, export, eval and the apps read them.

    \b
    Examples:
      dotcom-mobile train --model dotcom_tiny --data my_photos/ --input-size 224
      dotcom-mobile train --model dotcom_tiny --data my_photos/ --init dotcom_tiny_imagenet.pth \\
          --freeze-epochs 2 --input-size 224
      dotcom-mobile train --model dotcom_tiny --data digits/ --input-size 64 --hflip 0
      dotcom-mobile train --resume dotcom_mobile_out/train/dotcom_tiny/last.pth
      torchrun --nproc_per_node 2 -m dotcom_mobile.cli train --model dotcom_small --data imagenet/
      dotcom-mobile eval --checkpoint dotcom_mobile_out/train/dotcom_tiny/best.pth --data my_photos/

    \b
    Quantization-aware training: `dotcom-mobile quantize --qat-epochs N` on the trained checkpoint.
    """
    from dotcom_mobile.model import DotcomError

    from .trainer import TrainConfig, cleanup_distributed, train_model

    resume = opts.pop("resume")
    if resume is None and (model_name is None or data is None):
        raise DotcomError("train needs --model NAME and --data DIR (or --resume PATH)")
    explicit = {"model" if n == "model_name" else n for n in _explicit(ctx)}
    cfg = TrainConfig(model=model_name or "", data=data or "", **opts)
    try:
        result = train_model(cfg, resume=resume, explicit=explicit, echo=click.echo)
    finally:
        cleanup_distributed()
    if result.is_main:
        click.echo(f"Best val top-1 {100 * max(result.best_top1, 0):.2f}%  last: {result.last}  best: {result.best}")
    return result  # for wrappers (cli.py's --qat hands result.best to quantize)


@click.command("eval", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--model", "model_name", metavar="NAME", help="Variant of --checkpoint [default: read from the checkpoint].")
@click.option("--checkpoint", type=click.Path(dir_okay=False), metavar="PATH", help="PyTorch checkpoint to evaluate.")
@click.option("--artifact", "artifacts", type=click.Path(dir_okay=False), multiple=True, metavar="FILE.pte",
              help="Exported ExecuTorch program(s), run with their manifest's preprocessing; repeat to compare.")
@click.option("--data", type=click.Path(file_okay=False), required=True, metavar="DIR",
              help="ImageFolder root; images are read from DIR/<split>/<class>/*.")
@click.option("--split", default="val", show_default=True, help="Sub-folder of --data to evaluate.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Images per forward pass (eager).")
@click.option("--input-size", type=int, help="Evaluate a checkpoint at another resolution [default: the checkpoint's].")
@click.option("--workers", type=int, default=2, show_default=True, help="Image decoding processes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line instead of the table (for `report`).")
@click.option("--out", type=click.Path(dir_okay=False), metavar="FILE.json",
              help="Also write the result(s) to this file (a JSON object, or a list for several).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
def evaluate(model_name, checkpoint, artifacts, data, split, batch_size, input_size, workers, as_json, out, progress) -> None:
    """Top-1, top-5, loss and images/s of a checkpoint and/or exported .pte files.

    \b
    A .pte runs through the ExecuTorch runtime with the preprocessing and labels of its
    manifest (the <stem>.json beside it), so fp32, int8 and each backend can be compared
    in one table with the eager checkpoint. Class folders map to the model's labels by
    name (or in sorted order when the names differ but the count matches, as for ImageNet).

    \b
    Examples:
      dotcom-mobile eval --checkpoint best.pth --data flowers/
      dotcom-mobile eval --checkpoint best.pth --artifact out/dotcom_tiny_xnnpack_fp32.pte \\
          --artifact out/dotcom_tiny_xnnpack_q8.pte --data flowers/
      dotcom-mobile eval --artifact out/dotcom_tiny_xnnpack_q8.pte --data flowers/ --json > acc.jsonl

    \b
    --json prints, per evaluated file, one line:
      {"kind": "accuracy", "model", "artifact", "checkpoint", "backend", "quantization",
       "split", "data", "input_size", "top1", "top5", "loss", "count", "images_per_s"}
    (accuracies as fractions 0..1; backend "eager" and quantization "fp32" for a checkpoint).
    """
    from dotcom_mobile.model import DotcomError

    from .evaluation import evaluate_artifact, evaluate_checkpoint, format_table

    if checkpoint is None and not artifacts:
        raise DotcomError("eval needs --checkpoint PATH and/or --artifact FILE.pte")
    if model_name is not None and checkpoint is None:
        raise DotcomError("--model names the variant of --checkpoint; an --artifact's manifest already says it")
    rows = []
    if checkpoint is not None:
        rows.append(evaluate_checkpoint(checkpoint, data, model_name=model_name, split=split, batch_size=batch_size,
                                        workers=workers, input_size=input_size, progress=progress))
    for art in artifacts:
        rows.append(evaluate_artifact(art, data, split=split, batch_size=batch_size, workers=workers,
                                      progress=progress))
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2) + "\n")
        tmp.replace(p)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
    else:
        click.echo(format_table(rows))
