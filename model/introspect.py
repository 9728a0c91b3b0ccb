"""What a checkpoint (or a .pt2's or manifest's metadata) says about the model it holds.

Commands take ``--model`` only where nothing else says which network it is: a project
checkpoint records its variant, task, classes and input size; the authors' state dict
still gives away its variant and class count through its shapes; a quantized ``.pt2``
and a manifest carry the same fields as JSON. :func:`choose_model` is the one rule
every command applies: no ``--model`` -> the file's; a ``--model`` that says otherwise
-> one line naming both; neither -> one line asking for ``--model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import DotcomError


@dataclass(frozen=True)
class ModelFacts:
    """The model a file describes; None where the file does not say."""

    source: str  # how messages name the file: "checkpoint best.pth", "out/x.pt2"
    model: str | None
    task: str | None = None
    num_classes: int | None = None
    input_size: int | None = None  # square side in pixels


def checkpoint_facts(path: str | Path) -> ModelFacts:
    """Facts of a checkpoint: a project one says everything, the authors' its variant and classes."""
    from .checkpoint import checkpoint_filter_fn, describe_state_dict, is_project_checkpoint, read_checkpoint

    ckpt = read_checkpoint(path)
    source = f"checkpoint {path}"
    if is_project_checkpoint(ckpt):
        size = (ckpt.get("preprocess") or {}).get("input_size")
        return ModelFacts(source, str(ckpt["model"]) if ckpt.get("model") else None, ckpt.get("task", "classify"),
                          int(ckpt["num_classes"]) if ckpt.get("num_classes") else None,
                          int(size[-1]) if size else None)
    try:
        variant, classes = describe_state_dict(checkpoint_filter_fn(ckpt))
    except DotcomError as e:  # no state dict inside: say which file
        raise DotcomError(f"{path}: {e}") from None
    return ModelFacts(source, variant, "classify" if variant else None, classes)


def meta_facts(meta: Mapping[str, Any], source: str) -> ModelFacts:
    """Facts of a quantized .pt2's ``dotcom_meta.json`` or of a manifest (same field names)."""
    size = (meta.get("input") or {}).get("shape")
    pre = meta.get("preprocess")
    if size is None and pre is not None:  # a state dict, or a PreprocessConfig as loaded
        size = pre.input_size if hasattr(pre, "input_size") else pre.get("input_size")
    return ModelFacts(source, meta.get("model"), meta.get("task"),
                      int(meta["num_classes"]) if meta.get("num_classes") else None, int(size[-1]) if size else None)


def choose_model(option: str | None, facts: ModelFacts | None, *, default: str | None = None,
                 needs: str = "this command needs --model NAME") -> str:
    """The registry name to build: ``--model`` checked against the file, or the file's, or ``default``."""
    from .registry import resolve_model_name

    chosen = resolve_model_name(option) if option is not None else None
    known = resolve_model_name(facts.model) if facts is not None and facts.model else None
    if chosen and known and chosen != known:
        raise DotcomError(f"--model {option} contradicts {facts.source}, which holds {known} "
                          f"(drop --model: it is read from the file)")
    if chosen or known:
        return chosen or known  # type: ignore[return-value]
    if default is not None:
        return resolve_model_name(default)
    if facts is not None:
        raise DotcomError(f"{facts.source} does not say which model it holds: give --model NAME")
    raise DotcomError(needs)
