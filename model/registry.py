"""Model registry: ``create_model``/``list_models`` and the timm registration."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .checkpoint import (
    FORMAT, FORMAT_VERSION, checkpoint_filter_fn, describe_state_dict, is_project_checkpoint, load_state_dict_checked,
    read_checkpoint,
)
from .dotcom import VARIANTS, DoTCoM
from .errors import DotcomError
from .preprocess import PreprocessConfig

TASKS = ("classify", "detect", "segment")
DEFAULT_CLASSES = {"classify": 1000, "detect": 91, "segment": 21}
DEFAULT_PREPROCESS = PreprocessConfig()
# Inputs of the dense tasks (SSDLite 320x320, DeepLabv3 512x512): resize straight to the crop.
TASK_PREPROCESS = {
    "classify": DEFAULT_PREPROCESS,
    "detect": PreprocessConfig((3, 320, 320), crop_pct=1.0),
    "segment": PreprocessConfig((3, 512, 512), crop_pct=1.0),
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model` (one per DoTCoM variant)."""
    return list(VARIANTS)


def resolve_model_name(name: str) -> str:
    """Validate ``name``; unknown names get a one-line error with the nearest match."""
    if name in VARIANTS:
        return name
    alias = name.lower().replace("-", "_")
    if not alias.startswith("dotcom_"):
        alias = "dotcom_" + alias
    if alias in VARIANTS:
        return alias
    close = difflib.get_close_matches(name.lower().replace("-", "_"), list(VARIANTS), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise DotcomError(f"unknown model {name!r} (choose from {', '.join(VARIANTS)}){hint}")


def _build(name: str, task: str, num_classes: int, **options: Any) -> nn.Module:
    if task == "classify":
        return DoTCoM(VARIANTS[name], num_classes=num_classes, **options)
    if task == "detect":
        from .detection import build_detector

        return build_detector(name, num_classes=num_classes, **options)
    if task == "segment":
        from .segmentation import build_segmenter

        return build_segmenter(name, num_classes=num_classes, **options)
    raise DotcomError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")


def create_model(
    name: str,
    *,
    task: str = "classify",
    num_classes: int | None = None,
    checkpoint: str | Path | None = None,
    **options: Any,
) -> nn.Module:
    """Build a DoTCoM model in eval mode, optionally loading a checkpoint.

    ``checkpoint`` may be one of ours (it then also sets task, classes and options when
    they are not given), the authors' state dict or training checkpoint, or a
    DataParallel state dict. Options: ``co_bias`` (default True), ``block``
    (``qib``/``qg``/``mv2``/``basic`` at the QIB positions).

    The returned module carries ``dotcom_meta``: model name, task, class names and
    :class:`PreprocessConfig`, which later steps read instead of asking the user again.
    """
    name = resolve_model_name(name)
    if task not in TASKS:
        raise DotcomError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    ckpt = read_checkpoint(checkpoint) if checkpoint is not None else None
    state = _state_dict_of(ckpt, checkpoint) if ckpt is not None else None
    class_names = None
    preprocess = TASK_PREPROCESS[task]
    if ckpt is not None and is_project_checkpoint(ckpt):
        if ckpt.get("model") != name:
            raise DotcomError(
                f"checkpoint {checkpoint} is for {ckpt.get('model')} with {ckpt.get('num_classes')} classes, "
                f"not {name} (use --model {ckpt.get('model')})"
            )
        if ckpt.get("task", "classify") != task and task != "classify":
            raise DotcomError(f"checkpoint {checkpoint} is a {ckpt.get('task')} model, not {task}")
        task = ckpt.get("task", task)
        if num_classes is not None and num_classes != ckpt["num_classes"]:
            raise DotcomError(
                f"checkpoint {checkpoint} is for {name} with {ckpt['num_classes']} classes, not {num_classes}"
            )
        num_classes = int(ckpt["num_classes"])
        class_names = list(ckpt.get("class_names") or []) or None
        preprocess = PreprocessConfig.from_state(ckpt["preprocess"]) if ckpt.get("preprocess") else TASK_PREPROCESS[task]
        options = {**ckpt.get("options", {}), **options}
    if num_classes is None and state is not None and task == "classify":  # the authors' head says its classes
        num_classes = describe_state_dict(state)[1]
    if num_classes is None:
        num_classes = DEFAULT_CLASSES[task]
    model = _build(name, task, num_classes, **options)
    if ckpt is not None:
        load_state_dict_checked(model, state, name, str(checkpoint))
    from .labels import default_labels

    model.dotcom_meta = {
        "model": name,
        "task": task,
        "num_classes": num_classes,
        "class_names": class_names or default_labels(task, num_classes),
        "preprocess": preprocess,
        "options": dict(options),
    }
    return model.eval()


def _state_dict_of(ckpt: dict[str, Any], path: Any) -> dict[str, torch.Tensor]:
    try:
        return checkpoint_filter_fn(ckpt)
    except DotcomError as e:  # the message does not know the file
        raise DotcomError(f"{path}: {e}") from None


def save_checkpoint(path: str | Path, model: nn.Module, extra: dict[str, Any] | None = None) -> None:
    """Write a self-describing project checkpoint atomically (temp file, then rename)."""
    meta = model.dotcom_meta
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": meta["model"],
        "task": meta["task"],
        "num_classes": meta["num_classes"],
        "class_names": list(meta["class_names"]),
        "preprocess": meta["preprocess"].to_state(),
        "options": dict(meta.get("options", {})),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **(extra or {}),
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        torch.save(obj, tmp)
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)
