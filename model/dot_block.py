"""The DoT block: local convolutions, patch-wise attention and Co-Bias.

Written in the deployment form every ExecuTorch backend can take whole:

* attention runs on at most 4-D tensors: the 2x2 patch axis is folded into the batch
  (``[B*4, N, D]``), heads into the batch of the matmuls (``[B*4*heads, N, 8]``);
* unfold/fold into patches use 4-D reshapes and permutes only (Vulkan is 4-D);
* q, k and v are static slices of one projection (no ``chunk``/``split``, which
  XNNPACK does not delegate);
* Co-Bias is a broadcast add of a ``[1, C, 1, 1]`` parameter (no ``expand``);
* no einops, no in-place ops.

This is also the training form: the reference checkpoints load into it unchanged
(see :mod:`dotcom_mobile.model.checkpoint`).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvNormAct


class CoBias(nn.Module):
    """A learned per-channel bias, zero-initialised.

    Shifts the convolution features and the transformer features towards each other
    (the paper's fix for their different activation statistics) at the cost of one
    add; :func:`dotcom_mobile.model.deploy.fold_co_bias` removes the second one.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class Attention(nn.Module):
    """Multi-head self-attention over tokens ``x: [batch, tokens, dim]``."""

    def __init__(self, dim: int, heads: int = 4, head_dim: int = 8) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.proj = nn.Linear(heads * head_dim, dim)

    def _heads(self, t: torch.Tensor, b: int, n: int) -> torch.Tensor:
        # [b, n, heads*hd] -> [b*heads, n, hd]
        return t.reshape(b, n, self.heads, self.head_dim).permute(0, 2, 1, 3).reshape(b * self.heads, n, self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        inner = self.heads * self.head_dim
        qkv = self.qkv(x)
        q = self._heads(qkv[:, :, :inner], b, n)
        k = self._heads(qkv[:, :, inner: 2 * inner], b, n)
        v = self._heads(qkv[:, :, 2 * inner:], b, n)
        scores = torch.bmm(q, k.transpose(1, 2))
        if self.scale != 1.0:  # 1.0 once the deployment form has folded it into qkv's q rows
            scores = scores * self.scale
        attn = torch.softmax(scores, dim=-1)
        out = torch.bmm(attn, v)
        out = out.reshape(b, self.heads, n, self.head_dim).permute(0, 2, 1, 3).reshape(b, n, inner)
        return self.proj(out)


class Mlp(nn.Module):
    """Linear -> SiLU -> Linear (dropout 0 in the paper's recipe, so none here)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.SiLU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, mlp_hidden: int, heads: int = 4, head_dim: int = 8) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def unfold_patches(x: torch.Tensor, patch: int = 2) -> torch.Tensor:
    """``[B, D, H, W]`` -> ``[B*p*p, H*W/p^2, D]`` with 4-D reshapes/permutes only.

    Pixel ``(p*h+i, p*w+j)`` becomes token ``h*(W/p)+w`` of patch position ``p*i+j``;
    patch positions are folded into the batch (``b*p*p + p*i + j``).
    """
    b, d, hh, ww = x.shape
    h, w = hh // patch, ww // patch
    x = x.permute(0, 2, 3, 1)                                   # B, H, W, D
    x = x.reshape(b, h, patch, ww * d).permute(0, 2, 1, 3)      # B, i, h, (W D)
    x = x.reshape(b * patch * h, w, patch, d).permute(0, 2, 1, 3)  # (B i h), j, w, D
    x = x.reshape(b * patch, h, patch, w * d).permute(0, 2, 1, 3)  # (B i), j, h, (w D)
    return x.reshape(b * patch * patch, h * w, d)


def fold_patches(x: torch.Tensor, batch: int, height: int, width: int, patch: int = 2) -> torch.Tensor:
    """Inverse of :func:`unfold_patches`: ``[B*p*p, N, D]`` -> ``[B, D, H, W]``."""
    d = x.shape[-1]
    h, w = height // patch, width // patch
    x = x.reshape(batch * patch, patch, h, w * d).permute(0, 2, 1, 3)   # (B i), h, j, (w D)
    x = x.reshape(batch * patch * h, patch, w, d).permute(0, 2, 1, 3)   # (B i h), w, j, D
    x = x.reshape(batch, patch, h, width * d).permute(0, 2, 1, 3)       # B, h, i, (W D)
    return x.reshape(batch, height, width, d).permute(0, 3, 1, 2)


class DoTBlock(nn.Module):
    """DoT block on ``channels`` (C) with a transformer of width ``dim`` (D).

    local = SiLU(BN(1x1(SiLU(BN(dw3x3(y)))))); tokens = patches(local + CoBias1);
    ``depth`` transformer layers; global = SiLU(BN(1x1(fold(tokens))));
    out = SiLU(BN(1x1(CoBias2(cat[global, local])))) + y.
    """

    def __init__(
        self,
        channels: int,
        dim: int,
        depth: int,
        mlp_hidden: int,
        heads: int = 4,
        head_dim: int = 8,
        patch_size: int = 2,
        co_bias: bool = True,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.conv_dw = ConvNormAct(channels, channels, 3, groups=channels)
        self.conv_in = ConvNormAct(channels, dim, 1)
        self.co_bias1: nn.Module = CoBias(dim) if co_bias else nn.Identity()
        self.transformer = nn.Sequential(*[TransformerLayer(dim, mlp_hidden, heads, head_dim) for _ in range(depth)])
        self.conv_out = ConvNormAct(dim, channels, 1)
        self.co_bias2: nn.Module = CoBias(channels + dim) if co_bias else nn.Identity()
        self.conv_fuse = ConvNormAct(channels + dim, channels, 1)
        # Set by the deployment form (model.deploy.split_fuse): the fuse conv as one conv per branch.
        self.fuse_split: nn.Module | None = None

    def zero_init_last(self) -> None:
        """Zero the fusion BN scale: the block starts as the identity (SiLU(0) = 0, plus y)."""
        nn.init.zeros_(self.conv_fuse[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        local = self.conv_in(self.conv_dw(x))
        tokens = self.transformer(unfold_patches(self.co_bias1(local), self.patch_size))
        glob = self.conv_out(fold_patches(tokens, b, h, w, self.patch_size))
        return self.fuse(glob, local) + x

    def fuse(self, glob: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        """``conv_fuse(co_bias2(cat[glob, local]))``, or its split deployment form."""
        if self.fuse_split is not None:
            return self.fuse_split(glob, local)
        return self.conv_fuse(self.co_bias2(torch.cat([glob, local], dim=1)))
