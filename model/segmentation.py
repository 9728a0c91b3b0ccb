"""DeepLabv3 on a DoTCoM backbone (the paper's segmentation setting, PASCAL VOC 512x512).

The paper publishes no head; it compares with MobileViTv1-S (DeepLabv3, output stride
16), so this is DeepLabv3 as torchvision's ``DeepLabHead`` builds it, at output
stride 16:

* backbone: the whole DoTCoM with its last stage (the stride-2 QG block, stage 5) run
  at stride 1 with its second 3x3 conv dilated by 2 (torchvision's
  ``replace_stride_with_dilation`` rule: the block that would stride keeps dilation 1
  on its first conv, later convs take the new dilation). Stride and dilation do not
  change any weight shape, so the backbone's state dict is the classifier's and
  ImageNet weights load into it unchanged. Features: ``c9`` channels at stride 16
  (32x32 at 512);
* head: :class:`torchvision.models.segmentation.deeplabv3.ASPP` (1x1, three 3x3 atrous
  branches at rates 6/12/18 -- the DeepLabv3 paper's rates for output stride 16 --
  and image pooling; projection 1x1 + BN + ReLU + dropout 0.5), then 3x3 conv + BN +
  ReLU and a 1x1 classifier, exactly DeepLabHead's layout;
* ASPP width per variant, chosen so the totals land at the paper's counts:
  64 for Tiny/Small/Base, 256 (DeepLabHead's default) for Large.
  Small 3.37M (paper 3.2M, +5.3%), Base 6.61M (6.4M, +3.3%), Large 18.66M (18.1M, +3.1%);
* logits are upsampled bilinearly (align_corners=False) to the input size inside the
  module, so the exported graph returns ``[B, classes, H, W]``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from .dotcom import VARIANTS, DoTCoM
from .errors import DotcomError
from .layers import QuarterGroup

INPUT_SIZE = 512
OUTPUT_STRIDE = 16
ATROUS_RATES = (6, 12, 18)
ASPP_CHANNELS = {"dotcom_tiny": 64, "dotcom_small": 64, "dotcom_base": 64, "dotcom_large": 256}


def dilate_last_stage(backbone: DoTCoM, dilation: int = 2) -> None:
    """Run stage 5 (the QG block) at stride 1 with a dilated second conv: output stride 16."""
    qg = backbone.stages[5]
    if not isinstance(qg, QuarterGroup):  # pragma: no cover - the layout is fixed
        raise TypeError(f"expected the last stage to be a QuarterGroup, got {type(qg).__name__}")
    qg.conv1[0].stride = (1, 1)
    conv2 = qg.conv2[0]
    conv2.dilation = (dilation, dilation)
    conv2.padding = (dilation * (conv2.kernel_size[0] // 2),) * 2
    if not isinstance(qg.shortcut, nn.Identity):
        qg.shortcut[0].stride = (1, 1)
    for info in backbone.feature_info[5:]:
        info["reduction"] = OUTPUT_STRIDE


class DeepLabV3Head(nn.Sequential):
    """torchvision's DeepLabHead with a configurable width: ASPP, 3x3 conv, 1x1 classifier."""

    def __init__(self, in_chs: int, num_classes: int, width: int = 256, rates: Sequence[int] = ATROUS_RATES) -> None:
        super().__init__(
            ASPP(in_chs, list(rates), width),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )


class DoTCoMDeepLabV3(nn.Module):
    """DoTCoM (output stride 16) + DeepLabv3 head; logits at input resolution."""

    def __init__(
        self,
        variant: str,
        num_classes: int = 21,
        aspp_channels: int | None = None,
        atrous_rates: Sequence[int] = ATROUS_RATES,
        **options: Any,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise DotcomError(f"unknown model {variant!r} (choose from {', '.join(VARIANTS)})")
        if num_classes < 1:
            raise DotcomError(f"a segmenter needs at least 1 class, got {num_classes}")
        cfg = VARIANTS[variant]
        self.variant = variant
        self.num_classes = num_classes
        self.backbone = DoTCoM(cfg, num_classes=0, **options)
        dilate_last_stage(self.backbone)
        self.head = DeepLabV3Head(cfg.channels[9], num_classes, aspp_channels or ASPP_CHANNELS[variant], atrous_rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 3, H, W]`` -> logits ``[B, classes, H, W]`` (H, W multiples of 32)."""
        size = (x.shape[-2], x.shape[-1])
        logits = self.head(self.backbone.forward_features(x))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def build_segmenter(name: str, num_classes: int = 21, **options: Any) -> DoTCoMDeepLabV3:
    """DeepLabv3 (OS 16) on DoTCoM ``name``; ``aspp_channels``/``atrous_rates`` set the head,
    the rest (``co_bias``, ``block``) goes to the backbone."""
    return DoTCoMDeepLabV3(name, num_classes=num_classes, **options)
