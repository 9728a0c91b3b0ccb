"""``dotcom-mobile info`` and ``dotcom-mobile predict``: the model room's commands.

They live here, beside ``cli.py``, and not in ``model/``: importing any module under
``dotcom_mobile.model`` first runs its ``__init__``, which registers the networks with
timm and so imports torch. Only click and the standard library at module level:
``--help`` must not import torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

_CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_TASKS = ("classify", "detect", "segment")
_NATIVE_SIZE = {"classify": 256, "detect": 320, "segment": 512}

# The paper's tables (params; the FLOPs column is conv + linear MACs at 224, see flops.py).
PAPER_PARAMS: dict[tuple[str, str], int] = {
    ("dotcom_tiny", "classify"): 1_700_000, ("dotcom_small", "classify"): 2_800_000,
    ("dotcom_base", "classify"): 5_800_000, ("dotcom_large", "classify"): 11_100_000,
    ("dotcom_base", "detect"): 6_700_000, ("dotcom_large", "detect"): 12_900_000,
    ("dotcom_small", "segment"): 3_200_000, ("dotcom_base", "segment"): 6_400_000, ("dotcom_large", "segment"): 18_100_000,
}
PAPER_MACS: dict[tuple[str, str], int] = {
    ("dotcom_tiny", "classify"): 400_000_000, ("dotcom_small", "classify"): 800_000_000,
    ("dotcom_base", "classify"): 1_600_000_000, ("dotcom_large", "classify"): 3_300_000_000,
}
COUNTED = ("MACs = FlopCounterMode flops / 2 at batch 1: convolutions, linear layers (mm/addmm) and attention "
           "matmuls (bmm); BatchNorm, activations, softmax, LayerNorm, adds, pooling, resizing not counted")


def _rel(value: float | None, ref: float | None) -> float | None:
    return None if value is None or not ref else (value - ref) / ref


def info_rows(models: tuple[str, ...] = (), tasks: tuple[str, ...] = (), progress: bool = False) -> list[dict[str, Any]]:
    """One record per (variant, task): params, MACs at 224/256/native size, the paper's figures."""
    from dotcom_mobile.model import list_models, resolve_model_name
    from dotcom_mobile.model.flops import variant_macs, variant_params
    from dotcom_mobile.model.registry import DEFAULT_CLASSES

    names = [resolve_model_name(m) for m in models] or list_models()
    pairs = [(n, t) for n in names for t in (tasks or _TASKS)]
    jobs = [(n, t, s) for n, t in pairs for s in sorted({224, 256, _NATIVE_SIZE[t]})]
    from tqdm import tqdm

    for n, t, s in tqdm(jobs, desc="counting MACs", unit="model", file=sys.stderr, disable=not progress or None, leave=False):
        variant_macs(n, t, s)
    rows = []
    for n, t in pairs:
        params = variant_params(n, t)
        m224, m256, native = variant_macs(n, t, 224), variant_macs(n, t, 256), variant_macs(n, t, _NATIVE_SIZE[t])
        paper_params, paper_macs = PAPER_PARAMS.get((n, t)), PAPER_MACS.get((n, t))
        rows.append({
            "model": n,
            "task": t,
            "num_classes": DEFAULT_CLASSES[t],
            "input_size": _NATIVE_SIZE[t],
            "params": params,
            "macs_224": m224.total,
            "macs_256": m256.total,
            "macs_native": native.total,
            "macs_224_conv_linear": m224.conv_linear,
            "macs_224_attention": m224.attention,
            "macs_256_conv_linear": m256.conv_linear,
            "macs_256_attention": m256.attention,
            "macs_native_conv_linear": native.conv_linear,
            "paper_params": paper_params,
            "paper_macs": paper_macs,
            "params_rel_diff": _rel(params, paper_params),
            "macs_rel_diff": _rel(m224.conv_linear, paper_macs),
            "counted": COUNTED,
        })
    return rows


def _fmt_rel(r: float | None) -> str:
    return "" if r is None else f"{100 * r:+.1f}%"


def _g(v: float | None, unit: float = 1e9, digits: int = 2) -> str:
    return "-" if v is None else f"{v / unit:.{digits}f}"


def format_info_table(rows: list[dict[str, Any]]) -> str:
    """The human table of :func:`info_rows`."""
    header = ("model", "task", "input", "params", "paper", "diff", "GMACs@224", "(conv+lin)", "GMACs@256",
              "GMACs@input", "paper G", "diff")
    body = [
        (r["model"], r["task"], str(r["input_size"]), f"{r['params'] / 1e6:.3f}M",
         "-" if r["paper_params"] is None else f"{r['paper_params'] / 1e6:.1f}M", _fmt_rel(r["params_rel_diff"]),
         _g(r["macs_224"], digits=3), _g(r["macs_224_conv_linear"], digits=3), _g(r["macs_256"], digits=3),
         _g(r["macs_native"], digits=3), _g(r["paper_macs"], digits=1), _fmt_rel(r["macs_rel_diff"]))
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [line(header), line(["-" * w for w in widths])] + [line(b) for b in body]
    out += [
        "",
        "GMACs: " + COUNTED + ".",
        "(conv+lin): conv + linear only at 224, what the paper's FLOPs column counts; the first diff compares params,",
        "the second conv+lin at 224 with the paper's FLOPs. input: the task's own size (classify 256, detect 320,",
        "segment 512). Dense heads (SSDLite, DeepLabv3) are this project's choice; see model/README.md.",
    ]
    return "\n".join(out)


@click.command("info", context_settings=_CTX)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead of the table.")
@click.option("--model", "models", multiple=True, metavar="NAME", help="Only this variant (repeatable) [default: all four].")
@click.option("--task", "tasks", multiple=True, type=click.Choice(_TASKS), help="Only this task (repeatable) [default: all three].")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar while counting (on a terminal).")
def info(as_json: bool, models: tuple[str, ...], tasks: tuple[str, ...], progress: bool) -> None:
    """Every DoTCoM variant and task: parameters, MACs and the paper's figures.

    \b
    For each variant (tiny, small, base, large) and task (classify: ImageNet 1000
    classes; detect: SSDLite, COCO 91; segment: DeepLabv3, VOC 21) it prints
      params        exact parameter count, beside the paper's and the relative difference
      GMACs@224     multiply-accumulates of one 224x224 image (conv + linear + attention)
      (conv+lin)    the same without attention matmuls: what the paper's FLOPs column counts
      GMACs@256     at 256x256, the paper's training/eval crop
      GMACs@input   at the task's own input (classify 256, detect 320, segment 512)
    MACs are counted with torch.utils.flop_counter.FlopCounterMode on the meta device
    (shapes only, nothing is computed): MACs = flops / 2, batch 1. BatchNorm,
    activations, softmax, LayerNorm, adds, pooling and resizing are not counted.

    \b
    Examples:
      dotcom-mobile info
      dotcom-mobile info --task classify
      dotcom-mobile info --model dotcom_tiny --json

    \b
    --json prints a list of objects with model, task, num_classes, input_size, params,
    macs_224, macs_256, macs_native, *_conv_linear, *_attention, paper_params,
    paper_macs (null where the paper gives none), params_rel_diff, macs_rel_diff, counted.
    """
    rows = info_rows(models, tasks, progress=progress and not as_json)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_info_table(rows))


def _model_name_for(model_name: str | None, checkpoint: str | None) -> str:
    """--model, or the variant recorded in a project checkpoint."""
    from dotcom_mobile.model.introspect import checkpoint_facts, choose_model

    facts = checkpoint_facts(checkpoint) if checkpoint is not None else None
    return choose_model(model_name, facts, needs="predict needs --model NAME (and optionally --checkpoint PATH)")


def _print_classify(out, names: list[str], topk: int) -> None:
    import torch

    probs = torch.softmax(out[0].float(), dim=0)
    p, idx = probs.topk(min(topk, probs.numel()))
    for rank, (pi, i) in enumerate(zip(p.tolist(), idx.tolist()), start=1):
        click.echo(f"  {rank:>2}  {pi:.4f}  {names[i]}")


def _print_detect(model, out, names: list[str], image, preprocess, topk: int, score_threshold: float) -> None:
    from dotcom_mobile.model.postprocess import boxes_to_image, postprocess_detections

    h, w = preprocess.crop
    (det,) = postprocess_detections(out[0], out[1], model.anchors((h, w)), (h, w), score_thresh=score_threshold,
                                    detections_per_img=topk)
    boxes = boxes_to_image(det.boxes, image.size, preprocess)
    if len(det) == 0:
        click.echo(f"  no detections with score > {score_threshold:g}")
    for box, s, lab in zip(boxes.tolist(), det.scores.tolist(), det.labels.tolist()):
        x1, y1, x2, y2 = (round(v, 1) for v in box)
        click.echo(f"  {s:.4f}  {names[lab]:<16}  [{x1}, {y1}, {x2}, {y2}]")


def _print_segment(out, names: list[str], topk: int) -> None:
    from dotcom_mobile.model.postprocess import class_shares

    shares = class_shares(out)
    order = shares.argsort(descending=True)[:topk].tolist()
    for i in order:
        if shares[i] > 0:
            click.echo(f"  {100 * shares[i].item():6.2f}%  {names[i]}")


@click.command("predict", context_settings=_CTX)
@click.argument("images", nargs=-1, required=True, type=click.Path(), metavar="IMAGE...")
@click.option("--model", "model_name", metavar="NAME",
              help="Variant: dotcom_tiny, dotcom_small, dotcom_base or dotcom_large [default: read from --checkpoint].")
@click.option("--checkpoint", type=click.Path(dir_okay=False), metavar="PATH",
              help="Weights: a dotcom-mobile checkpoint (self-describing), the authors' state dict or training "
                   "checkpoint, or a DataParallel state dict [default: untrained weights].")
@click.option("--task", type=click.Choice(_TASKS), default=None,
              help="classify, detect (SSDLite, boxes) or segment (DeepLabv3, class pixel shares) "
                   "[default: the checkpoint's task, else classify].")
@click.option("--topk", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes to print per image (detect: at most this many boxes; segment: classes by share).")
@click.option("--score-threshold", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="detect: smallest class score of a printed box.")
def predict(images: tuple[str, ...], model_name: str | None, checkpoint: str | None, task: str | None, topk: int,
            score_threshold: float) -> None:
    """Run a DoTCoM model on images and print its predictions.

    \b
    Each image is preprocessed exactly as the model was trained (the checkpoint's own
    resize / center crop / ImageNet mean-std; the paper's 288 -> 256 by default) and run
    in eval mode on the CPU. Printed per image:
      classify  the top-k classes with their probabilities (ImageNet names by default,
                the class names recorded in a dotcom-mobile checkpoint otherwise)
      detect    boxes after SSD decoding + NMS (model/postprocess.py), in the original
                image's pixels: score, class, [x1, y1, x2, y2]
      segment   the share of pixels of each predicted class

    \b
    Examples:
      dotcom-mobile predict cat.jpg --model dotcom_tiny --checkpoint dotcom_tiny.pth
      dotcom-mobile predict photos/*.jpg --checkpoint dotcom_mobile_out/train/dotcom_tiny/best.pth --topk 3
      dotcom-mobile predict street.jpg --model dotcom_base --task detect --checkpoint ssdlite.pth
      dotcom-mobile predict street.jpg --model dotcom_small --task segment

    \b
    Without --checkpoint the weights are random: the output shows the pipeline works,
    not what is in the picture. An unreadable image or a directory is reported on one
    line and the others are still predicted; the exit status is then 1.
    """
    import torch

    from dotcom_mobile.model import DotcomError, create_model, load_image

    name = _model_name_for(model_name, checkpoint)
    model = create_model(name, task=task or "classify", checkpoint=checkpoint)
    meta = model.dotcom_meta
    preprocess, names = meta["preprocess"], list(meta["class_names"])
    transform = preprocess.transform()
    h, w = preprocess.crop
    errors: list[str] = []
    for path in images:
        try:
            image = load_image(path)
        except DotcomError as e:
            if errors:  # one line per bad image; the last one leaves through DotcomError (exit 1)
                click.secho(f"Error: {errors[-1]}", fg="red", err=True)
            errors.append(str(e))
            continue
        with torch.no_grad():
            out = model(transform(image)[None])
        click.echo(f"{path}  ({name} {meta['task']}, {w}x{h} input)")
        if meta["task"] == "classify":
            _print_classify(out, names, topk)
        elif meta["task"] == "detect":
            _print_detect(model, out, names, image, preprocess, topk, score_threshold)
        else:
            _print_segment(out, names, topk)
    if errors:
        raise DotcomError(errors[-1])
