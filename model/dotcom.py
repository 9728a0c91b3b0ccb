"""DoTCoM: a hybrid CNN/Transformer for mobile vision (QIB blocks, DoT blocks, Co-Bias).

Layout (total stride 32; input sides must be multiples of 32):

====== ============================================== ====== =========
stage  blocks                                         stride channels
====== ============================================== ====== =========
stem   3x3 conv s2, BN, ReLU                          2      c0
0      MV2 (e=6)                                      2      c1
1      QIB s2, QIB                                    4      c2
2      QIB s2, QIB, DoT(depth 2), MV2                 8      c3 -> c4
3      QIB, QIB, DoT(depth 3), MV2                    8      c5 -> c6
4      QIB s2, QIB, DoT(depth 4), MV2                 16     c7 -> c8
5      QG s2                                          32     c9
head   global average pool, Linear                          classes
====== ============================================== ====== =========
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .dot_block import DoTBlock
from .errors import DotcomError
from .layers import BLOCK_TYPES, ConvNormAct, InvertedResidual, QuarterGroup, make_block

STRIDE = 32


@dataclass(frozen=True)
class DoTCoMConfig:
    """One DoTCoM variant: widths c0..c9, transformer widths d0..d2, depths."""

    channels: tuple[int, ...]
    dims: tuple[int, int, int]
    depths: tuple[int, int, int] = (2, 3, 4)
    expansion: int = 6
    heads: int = 4
    head_dim: int = 8
    patch_size: int = 2

    def stage_args(self) -> list[tuple[int, int, int, int, int, int]]:
        """(in, mid, out, stride, depth, dim) for the three DoTCoM stages."""
        c, d = self.channels, self.dims
        return [
            (c[2], c[3], c[4], 2, self.depths[0], d[0]),
            (c[4], c[5], c[6], 1, self.depths[1], d[1]),
            (c[6], c[7], c[8], 2, self.depths[2], d[2]),
        ]


VARIANTS: dict[str, DoTCoMConfig] = {
    "dotcom_tiny": DoTCoMConfig((16, 16, 24, 32, 40, 48, 64, 80, 96, 384), (32, 48, 80)),
    "dotcom_small": DoTCoMConfig((16, 16, 32, 48, 64, 80, 96, 96, 128, 512), (48, 80, 96)),
    "dotcom_base": DoTCoMConfig((16, 32, 48, 64, 80, 96, 128, 160, 192, 768), (64, 96, 160)),
    "dotcom_large": DoTCoMConfig((16, 32, 64, 96, 128, 160, 192, 224, 256, 1024), (96, 160, 224)),
}


def check_input_size(height: int, width: int) -> None:
    """Raise a clear error for input sides DoTCoM cannot take (before any compute)."""
    if height % STRIDE or width % STRIDE or height <= 0 or width <= 0:
        raise DotcomError(
            f"input size {height}x{width} is not supported: DoTCoM needs both sides to be positive "
            f"multiples of {STRIDE} (e.g. 224 or 256)"
        )


class DoTCoMStage(nn.Sequential):
    """block(in->mid, stride), block(mid->mid), DoT block on mid, MV2 mid->out."""

    def __init__(
        self,
        in_chs: int,
        mid_chs: int,
        out_chs: int,
        stride: int,
        depth: int,
        dim: int,
        cfg: DoTCoMConfig,
        block: str,
        co_bias: bool,
    ) -> None:
        super().__init__(
            make_block(block, in_chs, mid_chs, stride, cfg.expansion),
            make_block(block, mid_chs, mid_chs, 1, cfg.expansion),
            DoTBlock(mid_chs, dim, depth, dim * depth, cfg.heads, cfg.head_dim, cfg.patch_size, co_bias),
            InvertedResidual(mid_chs, out_chs, 1, cfg.expansion),
        )


class DoTCoM(nn.Module):
    """The DoTCoM classifier; ``forward_stages`` exposes every stage for dense heads."""

    def __init__(
        self,
        cfg: DoTCoMConfig,
        num_classes: int = 1000,
        in_chans: int = 3,
        co_bias: bool = True,
        block: str = "qib",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        kwargs.pop("pretrained_cfg", None)
        kwargs.pop("pretrained_cfg_overlay", None)
        kwargs.pop("drop_rate", None)
        if kwargs:
            raise TypeError(f"unexpected DoTCoM options: {', '.join(sorted(kwargs))}")
        if block not in BLOCK_TYPES:
            raise DotcomError(f"unknown block type {block!r}; choose one of {', '.join(BLOCK_TYPES)}")
        c = cfg.channels
        self.cfg = cfg
        self.num_classes = num_classes
        self.num_features = c[9]
        self.stem = ConvNormAct(in_chans, c[0], 3, 2, act_layer=nn.ReLU)
        stages: list[nn.Module] = [
            InvertedResidual(c[0], c[1], 1, cfg.expansion),
            nn.Sequential(make_block(block, c[1], c[2], 2, cfg.expansion), make_block(block, c[2], c[2], 1, cfg.expansion)),
        ]
        stages += [DoTCoMStage(*args, cfg=cfg, block=block, co_bias=co_bias) for args in cfg.stage_args()]
        stages.append(QuarterGroup(c[8], c[9], 2))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c[9], num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [
            dict(num_chs=ch, reduction=red, module=f"stages.{i}")
            for i, (ch, red) in enumerate(zip((c[1], c[2], c[4], c[6], c[8], c[9]), (2, 4, 8, 8, 16, 32)))
        ]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def zero_init_last(self) -> None:
        """Start every residual branch at zero (BN scale 0 on its last layer), as timm's
        ``zero_init_last`` and torchvision's ``zero_init_residual`` do.

        Not the reference initialisation (that is :meth:`_init_weights`, what a new model
        has), so not applied by default; a training recipe opts in. With it the network
        starts as a short chain of the non-residual layers, and on a small dataset it
        learns from the first steps instead of after an epoch or more at chance
        (``train/recipes.py`` has the measurements). Parameter names and shapes are
        unchanged: checkpoints load either way.
        """
        for m in self.modules():
            if m is not self and hasattr(m, "zero_init_last"):
                m.zero_init_last()

    # timm-style API -----------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of every stage (strides 2, 4, 8, 8, 16, 32), for detection/segmentation."""
        check_input_size(x.shape[-2], x.shape[-1])
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(x.shape[-2], x.shape[-1])
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3), keepdim=True).flatten(1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
