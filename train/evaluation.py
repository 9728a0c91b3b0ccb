"""Accuracy of a checkpoint or of an exported ``.pte`` on an ImageFolder split.

Both paths end in :func:`dotcom_mobile.train.loop.evaluate`, so the numbers of an
eager checkpoint, an fp32 ``.pte`` and an int8 ``.pte`` are computed identically and
can sit in one table. A ``.pte`` is run through ``executorch.runtime`` with the
preprocessing from its manifest (``<stem>.json`` beside it), never with the eager
model's, so a manifest that disagrees with the model shows up as lost accuracy.

Each result is one small JSON object (``dotcom-mobile eval --json``), read by
``dotcom-mobile report``::

    {"kind": "accuracy", "model": "dotcom_tiny", "artifact": "out/dotcom_tiny_xnnpack_q8.pte" | null,
     "checkpoint": "best.pth" | null, "backend": "eager" | "xnnpack" | ..., "quantization": "fp32" | "q8" | ...,
     "split": "val", "data": "shapes/", "input_size": [64, 64],
     "top1": 0.97, "top5": 1.0, "loss": 0.11, "count": 128, "images_per_s": 812.5}

Accuracies are fractions (0..1); ``images_per_s`` counts forward passes only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from dotcom_mobile.model import DotcomError, PreprocessConfig, create_model

from . import data as D
from .loop import evaluate

ACCURACY_KIND = "accuracy"


def split_dataset(data: str | Path, split: str, class_names: Sequence[str], transform) -> D.ImageFolderDataset:
    """``data/split`` labelled with the model's class indices.

    Folders named like the model's classes map by name. Otherwise, when there are
    exactly as many folders as classes (ImageNet's ``n01440764``-style folders for a
    model whose labels are words), they map in sorted order, as torchvision does.
    """
    folders = D.check_split(data, split)
    names = list(class_names)
    if not set(folders) <= set(names):
        if len(folders) != len(names):
            unknown = sorted(set(folders) - set(names))
            raise DotcomError(
                f"{Path(data) / split} has {len(folders)} class folders and {unknown[0]!r} is not one of the "
                f"model's {len(names)} classes"
            )
        names = folders
    return D.ImageFolderDataset(Path(data) / split, names, transform)


def _row(**kw: Any) -> dict[str, Any]:
    return {"kind": ACCURACY_KIND, **kw}


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    *,
    model_name: str | None = None,
    split: str = "val",
    batch_size: int = 64,
    workers: int = 0,
    input_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Top-1/top-5/loss of a checkpoint (ours, or any ``create_model`` accepts)."""
    from dotcom_mobile.model.introspect import checkpoint_facts, choose_model

    name = choose_model(model_name, checkpoint_facts(checkpoint))
    model = create_model(name, checkpoint=checkpoint)
    pre: PreprocessConfig = model.dotcom_meta["preprocess"]
    if input_size is not None:
        pre = pre.with_size(input_size)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    ds = split_dataset(data, split, model.dotcom_meta["class_names"], D.eval_transform(pre))
    loader = D.make_loader(ds, batch_size=batch_size, train=False, workers=workers)
    m = evaluate(model, loader, device=device, progress=progress, desc=f"eval {Path(checkpoint).name}")
    return _row(model=model.dotcom_meta["model"], artifact=None, checkpoint=str(checkpoint), backend="eager",
                quantization="fp32", split=split, data=str(data), input_size=list(pre.crop), **m)


def load_pte(path: str | Path, batch: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable batch -> logits over an ExecuTorch program with a fixed batch ``batch``.

    Larger batches are cut into chunks; a short last chunk is zero-padded and the
    padding's outputs dropped, so any loader batch size works.
    """
    try:
        from executorch.runtime import Runtime
    except ImportError as e:  # pragma: no cover - executorch is a declared dependency
        raise DotcomError(f"executorch is not installed ({e}); it is needed to evaluate .pte files") from None
    try:
        method = Runtime.get().load_program(Path(path)).load_method("forward")
    except Exception as e:  # the runtime raises RuntimeError/ValueError for bad programs
        raise DotcomError(f"{path} cannot be loaded by the ExecuTorch runtime: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None

    def run(x: torch.Tensor) -> torch.Tensor:
        outs = []
        for chunk in x.split(batch):
            n = chunk.shape[0]
            if n < batch:
                chunk = torch.cat([chunk, chunk.new_zeros((batch - n, *chunk.shape[1:]))])
            out = method.execute([chunk.contiguous()])[0]
            outs.append(out[:n])
        return torch.cat(outs)

    return run


def evaluate_artifact(
    artifact: str | Path,
    data: str | Path,
    *,
    split: str = "val",
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Top-1/top-5/loss of an exported ``.pte`` with its manifest's preprocessing.

    The program is loaded in this process: a file from elsewhere should pass the export
    room's checks first (``dotcom_mobile.export.pte.check_program`` and ``probe_load``,
    the manifest's schema), as ``dotcom-mobile eval`` does (cli.py wires them in; this
    room may not import export).
    """
    art = Path(artifact)
    if art.suffix not in (".pte", ".bpte"):
        raise DotcomError(f"{art}: --artifact takes an ExecuTorch .pte file (got {art.suffix or 'no extension'})")
    manifest = D.read_manifest(art)
    if manifest.get("task", "classify") != "classify":
        raise DotcomError(f"{art} is a {manifest['task']} model; eval measures classification accuracy")
    shape = [int(v) for v in manifest["input"]["shape"]]
    crop = [int(v) for v in manifest["preprocessing"]["crop"]]
    if shape[2:] != crop:
        raise DotcomError(f"manifest of {art} crops {crop} but the program takes {shape[2:]}")
    if manifest["input"].get("dtype", "float32") != "float32":
        raise DotcomError(f"{art} takes {manifest['input']['dtype']} input; eval feeds float32 (export an fp32-input program)")
    ds = split_dataset(data, split, manifest["labels"], D.manifest_transform(manifest["preprocessing"]))
    loader = D.make_loader(ds, batch_size=batch_size, train=False, workers=workers)
    run = load_pte(art, shape[0])
    m = evaluate(run, loader, device="cpu", progress=progress, desc=f"eval {art.name}")
    return _row(model=manifest.get("model"), artifact=str(art), checkpoint=None, backend=manifest.get("backend"),
                quantization=manifest.get("quantization"), split=split, data=str(data), input_size=crop, **m)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text comparison table, one row per checkpoint/artifact."""
    head = ("what", "backend", "quant", "top-1 %", "top-5 %", "loss", "images", "img/s")
    body = [(
        Path(r["artifact"] or r["checkpoint"]).name, str(r["backend"]), str(r["quantization"]),
        f"{100 * r['top1']:.2f}", f"{100 * r['top5']:.2f}", f"{r['loss']:.4f}", str(r["count"]),
        f"{r['images_per_s']:.1f}",
    ) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, body)])
