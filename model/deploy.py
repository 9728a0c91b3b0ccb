"""Deployment form: exact re-parameterisations applied at export time.

The training form stays untouched; :func:`to_deploy` returns a converted deep copy.

* :func:`fold_co_bias` folds Co-Bias 2 into the 1x1 fuse convolution that follows it
  (``W (x + b) = W x + W b``; exact for a 1x1 conv without padding), one add fewer.
* :class:`LinearLayerNorm` rewrites LayerNorm with ops XNNPACK delegates: the mean
  over channels as a matmul with a constant ``1/D`` vector, then sub, mul, rsqrt.
  XNNPACK has no LayerNorm; left as it is, each one cuts the graph (18 cuts in Tiny).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .dot_block import CoBias, DoTBlock


class LinearLayerNorm(nn.Module):
    """LayerNorm over the last dim, as linear/sub/mul/rsqrt (same parameters)."""

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        (dim,) = norm.normalized_shape
        self.eps = norm.eps
        self.weight = nn.Parameter(norm.weight.detach().clone())
        self.bias = nn.Parameter(norm.bias.detach().clone())
        self.register_buffer("avg", torch.full((1, dim), 1.0 / dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = F.linear(x, self.avg)
        xc = x - mu
        var = F.linear(xc * xc, self.avg)
        return xc * torch.rsqrt(var + self.eps) * self.weight + self.bias


def fold_co_bias(model: nn.Module) -> nn.Module:
    """Fold every DoT block's Co-Bias 2 into its fuse conv, in place."""
    for block in model.modules():
        if isinstance(block, DoTBlock) and isinstance(block.co_bias2, CoBias):
            conv: nn.Conv2d = block.conv_fuse[0]
            assert conv.kernel_size == (1, 1) and conv.padding == (0, 0) and conv.groups == 1
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=True)
            with torch.no_grad():
                folded.weight.copy_(conv.weight)
                folded.bias.copy_(conv.weight.flatten(1) @ block.co_bias2.bias.flatten())
            block.conv_fuse[0] = folded
            block.co_bias2 = nn.Identity()
    return model


def replace_layernorms(model: nn.Module) -> nn.Module:
    """Swap every ``nn.LayerNorm`` for :class:`LinearLayerNorm`, in place."""
    for name, child in model.named_children():
        if isinstance(child, nn.LayerNorm):
            setattr(model, name, LinearLayerNorm(child))
        else:
            replace_layernorms(child)
    return model


# Which rewrites each backend needs. Core ML and Vulkan have LayerNorm kernels.
BACKEND_REWRITES = {
    "xnnpack": (fold_co_bias, replace_layernorms),
    "coreml": (fold_co_bias,),
    "mlpackage": (fold_co_bias,),
    "vulkan": (fold_co_bias,),
    "qnn": (fold_co_bias, replace_layernorms),
    "portable": (fold_co_bias,),
}


def to_deploy(model: nn.Module, backend: str = "xnnpack") -> nn.Module:
    """An eval-mode deep copy of ``model`` in the deployment form for ``backend``."""
    out = copy.deepcopy(model).eval()
    for rewrite in BACKEND_REWRITES[backend]:
        rewrite(out)
    if hasattr(model, "dotcom_meta"):
        out.dotcom_meta = model.dotcom_meta
    return out
