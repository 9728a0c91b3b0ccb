"""Multiply-accumulates (MACs) with ``torch.utils.flop_counter.FlopCounterMode``.

What is counted (batch 1, eval mode): FlopCounterMode's formulas for

* ``conv``: ``aten.convolution`` (every Conv2d, depthwise and grouped by their real
  cost ``out_pixels * k*k * in/groups * out``);
* ``linear``: ``aten.mm``/``aten.addmm`` (nn.Linear: classifier, q/k/v, projection, MLP);
* ``attention``: ``aten.bmm``/``baddbmm`` and the SDPA kernels (``q @ k^T`` and
  ``attn @ v`` in the DoT blocks);

MACs = flops / 2. Not counted: BatchNorm, activations, softmax, LayerNorm,
elementwise adds, pooling and interpolation (FlopCounterMode has no formula for them).
The paper's FLOPs column matches ``conv + linear`` at 224 (Base 1.61G, Large 3.41G);
attention adds about 0.05G at 224.

Counting runs on the ``meta`` device: FlopCounterMode only needs shapes, so nothing is
computed and no weights are allocated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn

CONV_OPS = ("convolution", "_convolution", "cudnn_convolution", "conv2d")
LINEAR_OPS = ("mm", "addmm")
ATTENTION_OPS = ("bmm", "baddbmm", "_scaled_dot_product_efficient_attention",
                 "_scaled_dot_product_flash_attention", "_scaled_dot_product_cudnn_attention",
                 "_scaled_dot_product_flash_attention_for_cpu")


@dataclass(frozen=True)
class MacCount:
    """MACs of one forward pass at batch 1, split by kind."""

    conv: int
    linear: int
    attention: int
    other: int = 0

    @property
    def conv_linear(self) -> int:
        """What the paper's FLOPs column counts."""
        return self.conv + self.linear

    @property
    def total(self) -> int:
        return self.conv + self.linear + self.attention + self.other

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "conv_linear": self.conv_linear, "total": self.total}


def _size(input_size: int | tuple[int, int]) -> tuple[int, int]:
    return (input_size, input_size) if isinstance(input_size, int) else (int(input_size[0]), int(input_size[1]))


def mac_breakdown(model: nn.Module, input_size: int | tuple[int, int], device: str | torch.device | None = None) -> MacCount:
    """Count the MACs of ``model`` on one ``3 x H x W`` input (square when an int).

    The input goes on ``device`` (default: the model's own device, ``meta`` included).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from .dotcom import check_input_size

    h, w = _size(input_size)
    check_input_size(h, w)
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    x = torch.zeros(1, 3, h, w, device=device)
    counter = FlopCounterMode(display=False, depth=None)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    kinds = {"conv": 0, "linear": 0, "attention": 0, "other": 0}
    for op, flops in counter.get_flop_counts()["Global"].items():
        name = str(op).split(".")[-1]  # OpOverloadPacket "aten.convolution"
        kind = ("conv" if name in CONV_OPS else "linear" if name in LINEAR_OPS
                else "attention" if name in ATTENTION_OPS else "other")
        kinds[kind] += int(flops) // 2
    return MacCount(**kinds)


def count_macs(model: nn.Module, input_size: int | tuple[int, int]) -> int:
    """Total MACs (conv + linear + attention matmuls) of one forward pass at batch 1."""
    return mac_breakdown(model, input_size).total


def build_on_meta(name: str, task: str = "classify", num_classes: int | None = None, **options: Any) -> nn.Module:
    """A model with the right shapes and no storage (for counting params and MACs).

    ``num_classes`` defaults to the task's own (``registry.DEFAULT_CLASSES``).
    """
    from .registry import DEFAULT_CLASSES, _build, resolve_model_name

    name = resolve_model_name(name)
    with torch.device("meta"):
        return _build(name, task, DEFAULT_CLASSES[task] if num_classes is None else num_classes, **options).eval()


@lru_cache(maxsize=None)
def _meta_model(name: str, task: str) -> nn.Module:
    return build_on_meta(name, task)


@lru_cache(maxsize=None)
def variant_macs(name: str, task: str, input_size: int) -> MacCount:
    """MACs of variant ``name`` for ``task`` (default classes), cached per (name, task, size)."""
    return mac_breakdown(_meta_model(name, task), input_size)


@lru_cache(maxsize=None)
def variant_params(name: str, task: str) -> int:
    """Parameter count of variant ``name`` for ``task`` (default classes)."""
    return sum(p.numel() for p in _meta_model(name, task).parameters())
