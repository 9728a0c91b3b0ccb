"""Convolutional building blocks of DoTCoM: MV2, Quarter Groups (QG) and QIB.

Every convolution is bias-free and followed by BatchNorm, as in the authors' code.
Blocks take ``(in_chs, out_chs, stride, expansion)`` so that the block ablation of
the paper can swap any of them in at the QIB positions (see :func:`make_block`).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

ActLayer = Optional[Callable[[], nn.Module]]


class ConvNormAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation.

    A Sequential so that the state-dict keys are ``<i>.weight`` style and
    ``torch.ao``/XNNPACK conv+bn fusion patterns see the plain module sequence.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        act_layer: ActLayer = nn.SiLU,
    ) -> None:
        conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2, groups=groups, bias=False)
        layers: list[nn.Module] = [conv, nn.BatchNorm2d(out_chs)]
        if act_layer is not None:
            layers.append(act_layer())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 project (linear).

    ``residual`` overrides the usual rule (stride 1 and same width); QIB needs that to
    reproduce the reference, which skips the add inside a stride-2 QIB.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        expansion: int = 6,
        residual: Optional[bool] = None,
    ) -> None:
        super().__init__()
        hidden = in_chs * expansion
        self.conv_pw = ConvNormAct(in_chs, hidden, 1) if expansion != 1 else nn.Identity()
        self.conv_dw = ConvNormAct(hidden, hidden, 3, stride, groups=hidden)
        self.conv_pwl = ConvNormAct(hidden, out_chs, 1, act_layer=None)
        self.has_residual = (stride == 1 and in_chs == out_chs) if residual is None else residual

    def zero_init_last(self) -> None:
        """Zero the last BN scale, so a residual block starts as the identity (no-op without the add)."""
        if self.has_residual:
            nn.init.zeros_(self.conv_pwl[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_pwl(self.conv_dw(self.conv_pw(x)))
        return x + y if self.has_residual else y


class QuarterGroup(nn.Module):
    """QG: two 3x3 convolutions in 4 groups with a (projected) shortcut, then SiLU.

    Grouping in quarters cuts the 3x3 cost by 4 while the shortcut keeps the
    gradient path; it carries the stride and the width change of a QIB.
    """

    groups = 4

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_chs, out_chs, 3, stride, groups=self.groups)
        self.conv2 = ConvNormAct(out_chs, out_chs, 3, 1, groups=self.groups, act_layer=None)
        if stride != 1 or in_chs != out_chs:
            self.shortcut: nn.Module = ConvNormAct(in_chs, out_chs, 1, stride, act_layer=None)
        else:
            self.shortcut = nn.Identity()
        self.act = nn.SiLU()

    def zero_init_last(self) -> None:
        """Zero the last BN scale: the block starts as SiLU(shortcut(x))."""
        nn.init.zeros_(self.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class QIB(nn.Module):
    """Quarter-Inverted Bottleneck: a QG part (stride, width) then an MV2 part.

    The MV2 part's residual is applied only when the QIB itself has stride 1: a quirk
    of the reference implementation, kept so its checkpoints give the same outputs.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, expansion: int = 6) -> None:
        super().__init__()
        self.qg = QuarterGroup(in_chs, out_chs, stride)
        self.mv2 = InvertedResidual(out_chs, out_chs, 1, expansion, residual=stride == 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mv2(self.qg(x))


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs), the 'Basic' column of the block ablation."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_chs, out_chs, 3, stride, act_layer=nn.ReLU)
        self.conv2 = ConvNormAct(out_chs, out_chs, 3, 1, act_layer=None)
        if stride != 1 or in_chs != out_chs:
            self.shortcut: nn.Module = ConvNormAct(in_chs, out_chs, 1, stride, act_layer=None)
        else:
            self.shortcut = nn.Identity()
        self.act = nn.ReLU()

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


BLOCK_TYPES = ("qib", "qg", "mv2", "basic")


def make_block(kind: str, in_chs: int, out_chs: int, stride: int, expansion: int = 6) -> nn.Module:
    """The block placed at a QIB position; ``kind`` is one of :data:`BLOCK_TYPES`."""
    if kind == "qib":
        return QIB(in_chs, out_chs, stride, expansion)
    if kind == "qg":
        return QuarterGroup(in_chs, out_chs, stride)
    if kind == "mv2":
        return InvertedResidual(in_chs, out_chs, stride, expansion)
    if kind == "basic":
        return BasicBlock(in_chs, out_chs, stride)
    raise ValueError(f"unknown block type {kind!r}; choose one of {', '.join(BLOCK_TYPES)}")
