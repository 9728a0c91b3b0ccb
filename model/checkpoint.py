"""Loading checkpoints: the authors' code, DataParallel, training dicts, our own.

Every load goes through ``torch.load(..., weights_only=True)``: a checkpoint can hold
tensors and plain data, never code.

The project's own checkpoint is self-describing::

    {"format": "dotcom-mobile", "format_version": 1, "model": "dotcom_tiny",
     "task": "classify", "num_classes": 10, "class_names": [...],
     "preprocess": {...PreprocessConfig.to_state()}, "options": {"co_bias": True},
     "state_dict": {...}, ...training state...}
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .dotcom import VARIANTS, DoTCoM
from .errors import DotcomError

FORMAT = "dotcom-mobile"
FORMAT_VERSION = 1

# Sub-block renames, reference -> ours. The reference uses nn.Sequential indices.
_MV2 = [(r"conv\.0\.", "conv_pw.0."), (r"conv\.1\.", "conv_pw.1."), (r"conv\.3\.", "conv_dw.0."),
        (r"conv\.4\.", "conv_dw.1."), (r"conv\.6\.", "conv_pwl.0."), (r"conv\.7\.", "conv_pwl.1.")]
_QG = [(r"conv_block\.0\.", "conv1.0."), (r"conv_block\.1\.", "conv1.1."), (r"conv_block\.3\.", "conv2.0."),
       (r"conv_block\.4\.", "conv2.1."), (r"downsample\.", "shortcut.")]
_DOT = [(r"conv1\.", "conv_dw."), (r"conv2\.", "conv_in."), (r"conv3\.", "conv_out."), (r"conv4\.", "conv_fuse."),
        (r"move1\.", "co_bias1."), (r"move2\.", "co_bias2."),
        (r"transformer\.layers\.(\d+)\.0\.norm\.", r"transformer.\1.norm1."),
        (r"transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.", r"transformer.\1.attn.qkv."),
        (r"transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.", r"transformer.\1.attn.proj."),
        (r"transformer\.layers\.(\d+)\.1\.norm\.", r"transformer.\1.norm2."),
        (r"transformer\.layers\.(\d+)\.1\.fn\.net\.0\.", r"transformer.\1.mlp.fc1."),
        (r"transformer\.layers\.(\d+)\.1\.fn\.net\.3\.", r"transformer.\1.mlp.fc2.")]


def _sub(rules: list[tuple[str, str]], rest: str) -> str:
    for pat, rep in rules:
        new, n = re.subn("^" + pat, rep, rest)
        if n:
            return new
    return rest


def _map_qib(rest: str) -> str:
    """A reference QIB sub-key (``conv_block``/``downsample`` = QG, ``conv`` = MV2)."""
    if rest.startswith(("conv_block.", "downsample.")):
        return "qg." + _sub(_QG, rest)
    return "mv2." + _sub(_MV2, rest)


def remap_reference_key(key: str) -> str:
    """One key of the authors' DoTCoM to ours (keys that are already ours pass through)."""
    if m := re.match(r"^base\.(.*)$", key):
        return "stem." + m[1]
    if m := re.match(r"^IB\.(.*)$", key):
        return "stages.0." + _sub(_MV2, m[1])
    if m := re.match(r"^QIB\.(\d+)\.(.*)$", key):
        return f"stages.1.{m[1]}." + _map_qib(m[2])
    if m := re.match(r"^DoT\.(\d+)\.mechanism\.(\d+)\.(.*)$", key):
        stage, idx, rest = int(m[1]) + 2, int(m[2]), m[3]
        if idx in (0, 1):
            return f"stages.{stage}.{idx}." + _map_qib(rest)
        if idx == 2:
            return f"stages.{stage}.2." + _sub(_DOT, rest)
        return f"stages.{stage}.3." + _sub(_MV2, rest)
    if m := re.match(r"^QG\.(.*)$", key):
        return "stages.5." + _sub(_QG, m[1])
    if m := re.match(r"^fc\.(.*)$", key):
        return "head." + m[1]
    return key


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """timm-style filter: unwrap containers, drop ``module.``, map reference key names."""
    state_dict = unwrap_state_dict(state_dict)
    out = {}
    for k, v in state_dict.items():
        if k.startswith("module."):
            k = k[len("module."):]
        out[remap_reference_key(k)] = v
    return out


def unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: ours, a training dict, or a bare state dict."""
    if not isinstance(obj, Mapping):
        raise DotcomError("checkpoint does not contain a state dict")
    for key in ("state_dict", "model_state_dict", "model", "state_dict_ema"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner)
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    raise DotcomError("checkpoint does not contain a state dict (looked for state_dict, model_state_dict, model)")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True`` and one-line errors."""
    from .files import require_file

    p = require_file(path, "checkpoint")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": about the file, said below if it matters
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        raise DotcomError(_load_error(p, e)) from None
    if not isinstance(obj, dict):
        raise DotcomError(f"checkpoint {p} holds a {type(obj).__name__}, not a dict")
    return obj


def _load_error(p: Path, e: Exception) -> str:
    """One line for why ``torch.load(weights_only=True)`` refused ``p``: torch's own is a page."""
    with open(p, "rb") as f:
        head = f.read(4)
    text = str(e)
    if not head:
        return f"checkpoint {p} is empty"
    if head != b"PK\x03\x04" and head[:1] != b"\x80":  # torch.save's zip, or a (legacy) pickle
        return f"checkpoint {p} is not a PyTorch checkpoint (neither torch.save's zip archive nor a pickle)"
    if "Weights only load failed" in text:
        after = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
        why = after[0].strip() if after and "WeightsUnpickler error:" in text else "not tensors and plain data"
        return (f"checkpoint {p} cannot be read safely: it holds more than tensors and plain data ({why}); "
                "it was refused and nothing in it ran")
    if "failed locating file data.pkl" in text:
        return f"checkpoint {p} is a zip archive without data.pkl: not a torch.save checkpoint (a torch.export .pt2?)"
    first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else type(e).__name__
    return f"checkpoint {p} cannot be read: {first} (truncated or corrupt?)"


def is_project_checkpoint(obj: Mapping[str, Any]) -> bool:
    return obj.get("format") == FORMAT


@lru_cache(maxsize=None)
def _backbone_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of a classifier variant, without the head (built on meta)."""
    with torch.device("meta"):
        m = DoTCoM(VARIANTS[name], num_classes=1)
    return {k: tuple(v.shape) for k, v in m.state_dict().items() if not k.startswith("head.")}


def describe_state_dict(state_dict: Mapping[str, torch.Tensor]) -> tuple[str | None, int | None]:
    """Guess (variant, num_classes) of a mapped classification state dict from its shapes."""
    head = state_dict.get("head.weight")
    classes = int(head.shape[0]) if head is not None and head.dim() == 2 else None
    shapes = {k: tuple(v.shape) for k, v in state_dict.items() if not k.startswith("head.")}
    for name in VARIANTS:
        ref = _backbone_shapes(name)
        common = set(ref) & set(shapes)
        if common and len(common) >= 0.9 * len(ref) and all(ref[k] == shapes[k] for k in common):
            return name, classes
    return None, classes


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], model_name: str, source: str) -> None:
    """Load strictly; on mismatch say which variant/classes the checkpoint fits and list keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if not (missing or unexpected or wrong):
        model.load_state_dict(state_dict, strict=True)
        return
    variant, classes = describe_state_dict(state_dict)
    num_classes = getattr(model, "num_classes", None)
    if variant and (variant != model_name or (classes is not None and classes != num_classes)):
        raise DotcomError(
            f"checkpoint {source} is for {variant} with {classes} classes, not {model_name} with {num_classes} classes"
            f" (use --model {variant})"
        )
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
            parts.append(f"{label} keys: {shown}")
    raise DotcomError(f"checkpoint {source} does not fit {model_name}: " + "; ".join(parts))
