"""SSDLite on a DoTCoM backbone (the paper's detection setting, COCO at 320x320).

The paper publishes no head; it compares with MobileViTv1-S and EdgeViT-S, which report
SSDLite at 320x320, so this is torchvision's ``ssdlite320_mobilenet_v3_large`` recipe
with DoTCoM in place of MobileNetV3:

* features: the stride-16 output of stage 4 (``c8`` channels) and the stride-32
  output of stage 5 (``c9``), then torchvision's four SSDLite extra blocks
  (1x1 -> 3x3 depthwise stride 2 -> 1x1, BN + ReLU6) of 512, 256, 256, 128 channels:
  six maps, 20/10/5/3/2/1 cells at 320;
* head: :class:`torchvision.models.detection.ssdlite.SSDLiteHead` (3x3 depthwise +
  1x1 per map, separately for classes and boxes), 6 anchors per cell from
  :class:`~torchvision.models.detection.anchor_utils.DefaultBoxGenerator` with aspect
  ratios [2, 3], scales 0.2..0.95; 3,234 anchors at 320;
* BatchNorm of extras and head as torchvision's SSDLite (eps 1e-3, momentum 0.03),
  their convs initialised N(0, 0.03).

With this recipe unchanged, Base has 6.90M parameters (paper 6.7M, +3.0%) and Large
12.18M (paper 12.9M, -5.6%); see model/README.md.

The module's ``forward`` ends at the raw outputs ``(box_regression [B, A, 4],
class_logits [B, A, classes])``: that is the graph ``torch.export`` sees and every
backend runs. Anchor decoding and NMS are plain post-processing
(:mod:`dotcom_mobile.model.postprocess`), shared by ``predict`` and the apps.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.ssdlite import SSDLiteHead
from torchvision.ops.misc import Conv2dNormActivation

from .dotcom import VARIANTS, DoTCoM, check_input_size
from .errors import DotcomError

INPUT_SIZE = 320
EXTRA_CHANNELS = (512, 256, 256, 128)   # torchvision's SSDLite extras (width_mult 1.0)
ASPECT_RATIOS = ((2, 3),) * 6           # 2 + 2*2 = 6 anchors per cell on each map
MIN_RATIO, MAX_RATIO = 0.2, 0.95
NORM_LAYER: Callable[..., nn.Module] = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)


def _extra_block(in_chs: int, out_chs: int) -> nn.Sequential:
    """SSDLite extra layer: 1x1 to out/2, 3x3 depthwise stride 2, 1x1 to out (BN, ReLU6)."""
    mid = out_chs // 2
    act = nn.ReLU6
    return nn.Sequential(
        Conv2dNormActivation(in_chs, mid, 1, norm_layer=NORM_LAYER, activation_layer=act),
        Conv2dNormActivation(mid, mid, 3, stride=2, groups=mid, norm_layer=NORM_LAYER, activation_layer=act),
        Conv2dNormActivation(mid, out_chs, 1, norm_layer=NORM_LAYER, activation_layer=act),
    )


def feature_map_sizes(height: int, width: int, num_extra: int = len(EXTRA_CHANNELS)) -> list[tuple[int, int]]:
    """Grid sizes of the six maps for an input ``height x width`` (stride 16, 32, then /2 each).

    A stride-2 3x3 conv with padding 1 maps ``n`` cells to ``ceil(n / 2)``.
    """
    sizes = [(height // 16, width // 16), (height // 32, width // 32)]
    for _ in range(num_extra):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class DoTCoMSSDLite(nn.Module):
    """DoTCoM backbone + SSDLite extras and head; ``forward`` returns raw outputs."""

    def __init__(self, variant: str, num_classes: int = 91, **options: Any) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise DotcomError(f"unknown model {variant!r} (choose from {', '.join(VARIANTS)})")
        if num_classes < 2:
            raise DotcomError(f"a detector needs at least 2 classes (background + 1), got {num_classes}")
        cfg = VARIANTS[variant]
        self.variant = variant
        self.num_classes = num_classes
        self.backbone = DoTCoM(cfg, num_classes=0, **options)
        c16, c32 = cfg.channels[8], cfg.channels[9]
        ins = (c32,) + EXTRA_CHANNELS[:-1]
        self.extra = nn.ModuleList([_extra_block(i, o) for i, o in zip(ins, EXTRA_CHANNELS)])
        for m in self.extra.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, mean=0.0, std=0.03)
        self.anchor_generator = DefaultBoxGenerator([list(r) for r in ASPECT_RATIOS], MIN_RATIO, MAX_RATIO)
        self.out_channels = [c16, c32, *EXTRA_CHANNELS]
        self.num_anchors = self.anchor_generator.num_anchors_per_location()
        self.head = SSDLiteHead(self.out_channels, self.num_anchors, num_classes, NORM_LAYER)
        self._anchor_cache: dict[tuple[int, int], torch.Tensor] = {}

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The six feature maps the head reads (strides 16, 32, 64, 128, 256, 512 at most)."""
        stages = self.backbone.forward_stages(x)
        feats = [stages[4], stages[5]]
        y = stages[5]
        for block in self.extra:
            y = block(y)
            feats.append(y)
        return feats

    @staticmethod
    def _flatten(out: torch.Tensor, columns: int) -> torch.Tensor:
        # [B, A*K, H, W] -> [B, H*W*A, K]. The same order as torchvision's SSDScoringHead
        # (which goes through a 5-D view); 4-D permute + reshape keeps every backend whole.
        b = out.shape[0]
        return out.permute(0, 2, 3, 1).reshape(b, -1, columns)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, 3, H, W]`` -> ``(box_regression [B, A, 4], class_logits [B, A, classes])``."""
        feats = self.features(x)
        reg_blocks = self.head.regression_head.module_list
        cls_blocks = self.head.classification_head.module_list
        boxes = [self._flatten(blk(f), 4) for blk, f in zip(reg_blocks, feats)]
        logits = [self._flatten(blk(f), self.num_classes) for blk, f in zip(cls_blocks, feats)]
        return torch.cat(boxes, dim=1), torch.cat(logits, dim=1)

    def anchors(self, image_size: int | tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
        """Default boxes ``[A, 4]`` (x1, y1, x2, y2 in input pixels) for an input size.

        Row ``i`` belongs to output row ``i`` of :meth:`forward`. Computed by
        torchvision's DefaultBoxGenerator from the grid sizes alone (no forward pass).
        """
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        check_input_size(h, w)
        key = (int(h), int(w))
        if key not in self._anchor_cache:
            images = ImageList(torch.empty(1, 0, h, w), [(h, w)])
            maps = [torch.empty(1, 0, gh, gw) for gh, gw in feature_map_sizes(h, w, len(self.extra))]
            self._anchor_cache[key] = self.anchor_generator(images, maps)[0]
        return self._anchor_cache[key].clone()


def build_detector(name: str, num_classes: int = 91, **options: Any) -> DoTCoMSSDLite:
    """SSDLite320 on DoTCoM ``name``; ``options`` go to the backbone (``co_bias``, ``block``)."""
    return DoTCoMSSDLite(name, num_classes=num_classes, **options)
