"""The Omni-block: a global learnable-token attention branch plus a local depthwise-conv branch.

Reimplements the decoder block of Omni-AD (arXiv 2503.21125, Sec. 3.2, Fig. 2; released code
github easyoo/Omni-AD ``model/omniad.py``: ``OmniBlock``, ``ToProxy2``, ``Attention``, ``DWConv``).
Input and output ``x`` are channels-last ``(B, H, W, C)``.

- Global branch (a): 64 learnable query tokens attend to x; the (B, 64, C) result goes through an FFN, is
  laid out as an 8x8 grid, resized (nearest) to H x W and added to x: ``m = out + x``.
  (b): queries from m attend to 64 learnable key/value tokens; FFN; ``global = out + m + x``.
  Scores are ``softmax(q kᵀ / sqrt(d)) + bias`` with a learnable bias added *after* the softmax. Because
  ``(softmax + bias) v = softmax·v + bias·v``, we compute the first term with
  ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels) and add ``bias·v`` exactly.
- Local branch: depthwise-separable convs with kernels 3 and 5 (dw → InstanceNorm → SiLU → 1x1 →
  InstanceNorm → SiLU), concatenated and fused by a 1x1 conv → InstanceNorm → SiLU.
- Merge: ``y = Linear(global + local) → InstanceNorm → SiLU → Linear``; ``out = y + x``.

Where we differ: the released ``Attention`` builds its FFN (``Mlp``) inside ``forward``, so the FFN weights
are redrawn from PyTorch's default Linear init at every call and never trained or saved. Our default
``ffn="learned"`` registers the FFN (trained, saved, deterministic); ``ffn="resampled"`` replays the released
behaviour by sampling the weights with the same distribution at every call (no modules built in forward,
nothing in the ``state_dict``). ``use_global_branch``/``use_local_branch`` are our ablation knobs.

Names vs. the released code:

===============================================  ======================================
omniad_lite                                      released code
===============================================  ======================================
``GlobalBranch``                                 ``ToProxy2``
``query_tokens`` / ``kv_tokens``                 ``learnable_q`` / ``learnable_kv``
``attn_a.q`` / ``attn_a.kv``                     ``q`` / ``kv_x``
``attn_b.q`` / ``attn_b.kv``                     ``q_2`` / ``kv_y``
``attn_a.score_bias`` / ``attn_b.score_bias``    ``pe2`` / ``pe1``
``ffn_a`` / ``ffn_b``                            ``Attention.ffn`` (``Mlp``, rebuilt per call)
``LocalBranch.conv3`` / ``.conv5``               ``conv33`` / ``conv55`` (``DWConv``)
``LocalBranch.fuse``                             ``mlp``
``OmniBlock.merge_in`` / ``merge_out``           ``l`` / ``l2``
===============================================  ======================================
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..errors import InputError
from .token_attention import TokenAttention, TokenFFN

INSTANCE_NORM_EPS = 1e-5  # nn.InstanceNorm2d default


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class _InstanceNormSiLU(torch.autograd.Function):
    """Non-affine InstanceNorm over H, W of channels-last ``(B, H, W, C)``, optionally followed by SiLU.

    Forward: mean, centre, mean of squares, scale in place; backward from the saved normalised tensor,
    ``dx = rstd · (g - mean(g) - y · mean(g · y))``, in two reductions and two ``addcmul`` passes — about half
    the memory traffic of autograd through the elementary ops, which matters on a CPU where these
    memory-bound passes are a large part of a training step. Statistics and gradients are computed in float32
    (so the norm stays accurate under bf16 autocast); the output has the input's dtype.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float, silu: bool) -> torch.Tensor:
        xf = _at_least_float32(x)
        centred = xf - xf.mean(dim=(1, 2), keepdim=True)  # (B, H, W, C)
        # two-pass variance (mean, then mean of squares of the centred values): as accurate as var_mean
        # and several times faster than it over the non-innermost dims H, W
        rstd = torch.rsqrt((centred * centred).mean(dim=(1, 2), keepdim=True) + eps)  # (B, 1, 1, C)
        y = centred.mul_(rstd)
        ctx.save_for_backward(y, rstd)
        ctx.silu, ctx.dtype = silu, x.dtype
        return (F.silu(y) if silu else y).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        y, rstd = ctx.saved_tensors
        g = _at_least_float32(grad)
        if ctx.silu:
            g = torch.ops.aten.silu_backward(g, y)  # d silu(y) / dy from the saved y
        mean_g = g.mean(dim=(1, 2), keepdim=True)  # (B, 1, 1, C)
        mean_gy = (g * y).mean(dim=(1, 2), keepdim=True)
        dx = torch.addcmul(torch.addcmul(-rstd * mean_g, g, rstd), y, -rstd * mean_gy)
        return dx.to(ctx.dtype), None, None


def instance_norm_channels_last(x: torch.Tensor, eps: float = INSTANCE_NORM_EPS) -> torch.Tensor:
    """Non-affine InstanceNorm over H, W of a channels-last ``(B, H, W, C)`` tensor (= ``nn.InstanceNorm2d``).

    Statistics are computed in float32 so the norm stays accurate under bf16/fp16 autocast.
    """
    return _InstanceNormSiLU.apply(x, eps, False)


def instance_norm_silu(x: torch.Tensor, eps: float = INSTANCE_NORM_EPS) -> torch.Tensor:
    """``silu(instance_norm_channels_last(x))`` as one autograd node (the Omni-block's recurring pair)."""
    return _InstanceNormSiLU.apply(x, eps, True)


class GlobalBranch(nn.Module):
    """Two learnable-token attentions (a) and (b) with FFNs (released: ``ToProxy2``).

    Args:
        dim: channels C.
        num_heads: attention heads.
        num_query_tokens: learnable query tokens of (a); a perfect square (grid side sqrt, paper 8x8 = 64).
        num_kv_tokens: learnable key/value tokens of (b) (paper: 64).
        ffn: ``"learned"`` or ``"resampled"``.
    """

    def __init__(self, dim: int, num_heads: int = 8, num_query_tokens: int = 64, num_kv_tokens: int = 64,
                 ffn: str = "learned"):
        super().__init__()
        self.grid = math.isqrt(num_query_tokens)
        if self.grid ** 2 != num_query_tokens:
            raise InputError(f"num_query_tokens={num_query_tokens} must be a perfect square (e.g. 64 = 8x8)")
        self.query_tokens = nn.Parameter(torch.zeros(num_query_tokens, dim))
        self.kv_tokens = nn.Parameter(torch.zeros(num_kv_tokens, dim))
        self.attn_a = TokenAttention(dim, num_heads, num_query_tokens, bias_over="queries")
        self.ffn_a = TokenFFN(dim, ffn)
        self.attn_b = TokenAttention(dim, num_heads, num_kv_tokens, bias_over="keys")
        self.ffn_b = TokenFFN(dim, ffn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C) -> (B, H, W, C)``."""
        _, height, width, _ = x.shape
        tokens = rearrange(x, "b h w c -> b (h w) c")
        a = self.ffn_a(self.attn_a(self.query_tokens, tokens))  # (B, Nq, C)
        # (B, gh·gw, C) → (B, gh, gw, C), upsampled onto x: (B, H, W, C)
        m = self._upsample_add(rearrange(a, "b (gh gw) c -> b gh gw c", gh=self.grid), x)
        b = self.ffn_b(self.attn_b(rearrange(m, "b h w c -> b (h w) c"), self.kv_tokens))  # (B, HW, C)
        return rearrange(b, "b (h w) c -> b h w c", h=height) + m + x

    def _upsample_add(self, grid: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``nearest_resize(grid, (H, W)) + x`` for a ``(B, g, g, C)`` grid and ``(B, H, W, C)`` features.

        When g divides H and W (every stage of the paper and demo models) nearest resizing repeats each grid
        cell over an ``H/g × W/g`` patch, so the sum is one broadcast add (no resized copy, and a reduction
        in backward); otherwise ``F.interpolate(mode="nearest")``.
        """
        b, height, width, c = x.shape
        g = self.grid
        if height % g or width % g:
            up = F.interpolate(rearrange(grid, "b gh gw c -> b c gh gw"), size=(height, width), mode="nearest")
            return rearrange(up, "b c h w -> b h w c") + x
        patches = x.reshape(b, g, height // g, g, width // g, c)  # (B, g, H/g, g, W/g, C)
        return (patches + grid.reshape(b, g, 1, g, 1, c)).view(b, height, width, c)


def pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 ``conv`` applied to channels-last ``(B, H, W, C_in)`` as the matrix product it is: ``(B, H, W, C_out)``."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


class SeparableConv(nn.Module):
    """Depthwise k x k → InstanceNorm → SiLU → pointwise 1x1 → InstanceNorm → SiLU (released: ``DWConv``)."""

    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.pointwise = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` in channels-last memory format ``-> (B, H, W, C)``."""
        # (B, H, W, C): channels-last throughout
        x = instance_norm_silu(self.depthwise(x).permute(0, 2, 3, 1))
        return instance_norm_silu(pointwise(self.pointwise, x))


class LocalBranch(nn.Module):
    """Kernel-3 and kernel-5 separable convs, concatenated, fused by 1x1 conv → InstanceNorm → SiLU."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv3 = SeparableConv(dim, 3)
        self.conv5 = SeparableConv(dim, 5)
        self.fuse = nn.Conv2d(2 * dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C) -> (B, H, W, C)``; everything stays channels-last (the convs see an NCHW view)."""
        nchw = rearrange(x, "b h w c -> b c h w")  # a view with channels-last strides
        y = torch.cat([self.conv3(nchw), self.conv5(nchw)], dim=-1)  # (B, H, W, 2C)
        return instance_norm_silu(pointwise(self.fuse, y))


class OmniBlock(nn.Module):
    """One Omni-block: ``x + Linear(SiLU(IN(Linear(global(x) + local(x)))))`` on ``(B, H, W, C)``.

    Args:
        dim: channels C.
        num_heads: attention heads of the global branch.
        num_query_tokens, num_kv_tokens: learnable tokens of attentions (a) and (b).
        use_global_branch, use_local_branch: ablation knobs (at least one must be on).
        ffn: ``"learned"`` or ``"resampled"``.
    """

    def __init__(self, dim: int, *, num_heads: int = 8, num_query_tokens: int = 64, num_kv_tokens: int = 64,
                 use_global_branch: bool = True, use_local_branch: bool = True, ffn: str = "learned"):
        super().__init__()
        if not (use_global_branch or use_local_branch):
            raise InputError("OmniBlock needs at least one of use_global_branch / use_local_branch")
        self.global_branch = (GlobalBranch(dim, num_heads, num_query_tokens, num_kv_tokens, ffn)
                              if use_global_branch else None)
        self.local_branch = LocalBranch(dim) if use_local_branch else None
        self.merge_in = nn.Linear(dim, dim)
        self.merge_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C) -> (B, H, W, C)``."""
        if self.global_branch is not None and self.local_branch is not None:
            y = self.global_branch(x) + self.local_branch(x)
        elif self.global_branch is not None:
            y = self.global_branch(x)
        else:
            y = self.local_branch(x)
        y = instance_norm_silu(self.merge_in(y))  # (B, H, W, C)
        return self.merge_out(y) + x
