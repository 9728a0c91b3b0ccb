"""Deployment form: exact re-parameterisations applied at export time.

The training form stays untouched; :func:`to_deploy` returns a converted deep copy.

* :func:`fold_co_bias` folds Co-Bias 2 into the 1x1 fuse convolution that follows it
  (``W (x + b) = W x + W b``; exact for a 1x1 conv without padding), one add fewer.
* :class:`LinearLayerNorm` rewrites LayerNorm with ops XNNPACK delegates: the mean
  over channels as a matmul with a constant ``1/D`` vector, then sub, mul, rsqrt.
  XNNPACK has no LayerNorm; left as it is, each one cuts the graph (18 cuts in Tiny).
* :func:`fold_batchnorms` folds every BatchNorm into the convolution before it. Every
  backend does this while lowering anyway; doing it first hands the exporter a smaller
  graph (DoTCoM-Tiny with all XNNPACK rewrites: 990 nodes against the training form's
  1,208 after ``torch.export``), and every lowering pass costs time per node. PT2E's PTQ
  folds conv+BN the same way in ``prepare_pt2e``.
* :func:`split_fuse` (XNNPACK) computes each DoT block's ``conv(cat[global, local])`` as
  one 1x1 conv per branch plus an add, so that int8 gives each branch its own scale.
* :func:`fold_attention_scale` (XNNPACK) moves attention's ``head_dim ** -0.5`` into the
  q projection's weights.
* :func:`global_pools_as_mean` (XNNPACK) writes ``AdaptiveAvgPool2d(1)`` (DeepLabv3's image
  pooling branch) as a mean over H and W. Its ExecuTorch decomposition leaves an
  ``as_strided_copy`` XNNPACK cannot take, which cut the segmenter into two partitions.
* :class:`SplitSiLU` (XNNPACK) writes SiLU as ``x * sigmoid(x)``, the two ops XNNPACK has int8
  kernels for. As one ``silu`` op the quantizer cannot annotate it, and each of the
  ~60 SiLUs ran in fp32 between a dequantize and a quantize inside the int8 graph.
  The fp32 graph is unchanged: ExecuTorch decomposes ``silu`` into the same two ops.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

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


class SplitSiLU(nn.Module):
    """SiLU as ``x * sigmoid(x)``: the same function, in two ops a quantizer can annotate."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def fold_batchnorms(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d that directly follows a Conv2d in a Sequential, in place.

    The convolution gains the bias ``beta - gamma * mean / sqrt(var + eps)``, its weight
    is scaled per output channel, and the BatchNorm's slot becomes an ``nn.Identity``, so
    module paths (``stages.0.conv_pw.0``) stay as they were for reports and patterns.
    """
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                module._modules[first] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                module._modules[second] = nn.Identity()
    return model


class SplitFuse(nn.Module):
    """``act(conv(cat[a, b]))`` for a 1x1 conv, as ``act(conv_a(a) + conv_b(b))``: the same sums, split.

    The weight's input channels are cut where ``a`` ends; ``conv_a`` keeps the bias.
    """

    def __init__(self, fuse: nn.Sequential, split: int) -> None:
        super().__init__()
        conv: nn.Conv2d = fuse[0]
        assert conv.kernel_size == (1, 1) and conv.groups == 1 and conv.stride == (1, 1)
        w = conv.weight.detach()
        self.conv_a = nn.Conv2d(split, conv.out_channels, 1, bias=conv.bias is not None)
        self.conv_b = nn.Conv2d(conv.in_channels - split, conv.out_channels, 1, bias=False)
        with torch.no_grad():
            self.conv_a.weight.copy_(w[:, :split])
            self.conv_b.weight.copy_(w[:, split:])
            if conv.bias is not None:
                self.conv_a.bias.copy_(conv.bias)
        self.act = nn.Sequential(*list(fuse)[1:])  # what followed the conv (Identity after BN folding, SiLU)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_a(a) + self.conv_b(b))


def split_fuse(model: nn.Module) -> nn.Module:
    """Give every DoT block a :class:`SplitFuse` in place of its concat + fuse conv, in place.

    The concat of the global (transformer) and local (conv) branches makes both share
    one int8 scale, and their ranges differ (the imbalance Co-Bias is there to
    reduce): the narrower branch keeps a few levels. On the trained shapes DoTCoM-Tiny
    the global branch of stage 3 came out of it at 14.5 dB SQNR, 12.5 dB lost in that one
    layer. Split, each branch's conv reads its input at its own scale.
    Needs Co-Bias 2 folded first (it is a bias on the concat).
    """
    for block in model.modules():
        if isinstance(block, DoTBlock) and block.fuse_split is None:
            assert isinstance(block.co_bias2, nn.Identity), "fold_co_bias must run before split_fuse"
            block.fuse_split = SplitFuse(block.conv_fuse, block.conv_out[0].out_channels)
            block.conv_fuse = nn.Identity()
    return model


def fold_attention_scale(model: nn.Module) -> nn.Module:
    """Fold each attention's ``head_dim ** -0.5`` into the q rows of its qkv projection, in place.

    ``(s Q) K^T = s (Q K^T)``: exact, one mul fewer per attention, and in int8 the
    attention scores are no longer quantized just to be scaled before the softmax.
    """
    from .dot_block import Attention

    for attn in model.modules():
        if isinstance(attn, Attention) and attn.scale != 1.0:
            inner = attn.heads * attn.head_dim
            with torch.no_grad():
                attn.qkv.weight[:inner] *= attn.scale
                if attn.qkv.bias is not None:
                    attn.qkv.bias[:inner] *= attn.scale
            attn.scale = 1.0
    return model


class GlobalMean(nn.Module):
    """``x.mean((2, 3), keepdim=True)``: ``AdaptiveAvgPool2d(1)`` as one op XNNPACK delegates."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


def global_pools_as_mean(model: nn.Module) -> nn.Module:
    """Swap every ``nn.AdaptiveAvgPool2d(1)`` for :class:`GlobalMean`, in place."""
    for name, child in model.named_children():
        if isinstance(child, nn.AdaptiveAvgPool2d) and child.output_size in (1, (1, 1)):
            setattr(model, name, GlobalMean())
        else:
            global_pools_as_mean(child)
    return model


def split_silu(model: nn.Module) -> nn.Module:
    """Swap every ``nn.SiLU`` for :class:`SplitSiLU`, in place."""
    for name, child in model.named_children():
        if isinstance(child, nn.SiLU):
            setattr(model, name, SplitSiLU())
        else:
            split_silu(child)
    return model


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


# Which rewrites each backend needs. Core ML and Vulkan have LayerNorm kernels. Co-Bias
# is folded before BatchNorm: it folds into the fuse conv's weight, and BatchNorm then
# folds into that conv's weight and bias in turn.
BACKEND_REWRITES = {
    "xnnpack": (fold_co_bias, fold_batchnorms, split_fuse, fold_attention_scale, replace_layernorms, split_silu,
                global_pools_as_mean),
    "coreml": (fold_co_bias, fold_batchnorms),
    "mlpackage": (fold_co_bias, fold_batchnorms),
    "vulkan": (fold_co_bias, fold_batchnorms),
    "qnn": (fold_co_bias, fold_batchnorms, replace_layernorms),
    "portable": (fold_co_bias, fold_batchnorms),
}


def to_deploy(model: nn.Module, backend: str = "xnnpack") -> nn.Module:
    """An eval-mode deep copy of ``model`` in the deployment form for ``backend``."""
    out = copy.deepcopy(model).eval()
    for rewrite in BACKEND_REWRITES[backend]:
        rewrite(out)
    if hasattr(model, "dotcom_meta"):
        out.dotcom_meta = model.dotcom_meta
    return out
