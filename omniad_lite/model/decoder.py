"""The decoder: four stages of Omni-blocks that reconstruct the encoder's three scales.

Reimplements Omni-AD's decoder (arXiv 2503.21125, Sec. 3.2; released code github easyoo/Omni-AD
``model/omniad.py``: ``Decoder``, ``DecoderStage``, ``PatchExpand2D``, built on MambaAD's ``MambaUPNet``).
Stage dims are ``(2·c3, c3, c2, c1)`` (512, 256, 128, 64 for resnet34) and depths (3, 9, 9, 7). Stage 0
runs at the neck's resolution; stages 1–3 first upsample x2 (bias-free Linear in_dim → 4·out_dim, 2x2
pixel-shuffle, LayerNorm(out_dim)). Stage 1/2/3 outputs reconstruct encoder scales 3/2/1. Everything is
channels-last ``(B, H, W, C)`` inside; the layout changes only on entry and exit.

Init (as the released code): Linear weights timm ``trunc_normal_`` std 0.02 (cut at ±2 absolute, so in
effect normal) with zero bias, LayerNorm 1/0; convs
keep PyTorch's default init; learnable tokens and attention biases start at zero.

Names vs. the released code: ``stages`` = ``layers_up``; ``Upsample`` = ``PatchExpand2D`` (``proj`` =
``expand``); ``DecoderStage.blocks[i]`` = ``blocks[i].blocks[0]`` (``OmniBlockWrapper`` holds one block).
"""
from __future__ import annotations

import torch
from einops import rearrange
from timm.layers import trunc_normal_
from torch import nn

from ..errors import InputError
from .omni_block import OmniBlock

LINEAR_INIT_STD = 0.02
UPSAMPLE_FACTOR = 2


class Upsample(nn.Module):
    """x2 upsampling: Linear(in_dim, 4·out_dim, bias=False) → 2x2 pixel-shuffle → LayerNorm(out_dim)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, UPSAMPLE_FACTOR ** 2 * out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, in_dim) -> (B, 2H, 2W, out_dim)``."""
        x = self.proj(x)  # (B, H, W, 4·out_dim)
        x = rearrange(x, "b h w (p1 p2 c) -> b (h p1) (w p2) c", p1=UPSAMPLE_FACTOR, p2=UPSAMPLE_FACTOR)
        return self.norm(x)


class DecoderStage(nn.Module):
    """Optional :class:`Upsample` followed by ``depth`` :class:`OmniBlock`s.

    Args:
        in_dim: channels entering the stage.
        dim: channels of the stage's blocks.
        depth: number of Omni-blocks.
        upsample: upsample x2 first (stages 1–3).
        block_kwargs: passed to every :class:`OmniBlock`.
    """

    def __init__(self, in_dim: int, dim: int, depth: int, upsample: bool, **block_kwargs):
        super().__init__()
        if not upsample and in_dim != dim:
            raise InputError(f"a stage without upsampling keeps its channels; got in_dim={in_dim}, dim={dim}")
        self.upsample = Upsample(in_dim, dim) if upsample else None
        self.blocks = nn.Sequential(*[OmniBlock(dim, **block_kwargs) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, in_dim) -> (B, H', W', dim)`` with ``H' = 2H`` when upsampling."""
        if self.upsample is not None:
            x = self.upsample(x)
        return self.blocks(x)


class Decoder(nn.Module):
    """Four decoder stages; returns the reconstructions of encoder scales 1, 2, 3 (fine to coarse).

    Args:
        channels: encoder channels ``(c1, c2, c3)``; stage dims become ``(2·c3, c3, c2, c1)``.
        depths: Omni-blocks per stage (paper: 3, 9, 9, 7).
        num_heads, num_query_tokens, num_kv_tokens, use_global_branch, use_local_branch, ffn: see
            :class:`~omniad_lite.omni_block.OmniBlock`.
    """

    def __init__(self, channels: list[int] | tuple[int, int, int], depths: tuple[int, ...] = (3, 9, 9, 7), *,
                 num_heads: int = 8, num_query_tokens: int = 64, num_kv_tokens: int = 64,
                 use_global_branch: bool = True, use_local_branch: bool = True, ffn: str = "learned"):
        super().__init__()
        c1, c2, c3 = channels
        if len(depths) != 4:
            raise InputError(f"decoder depths={tuple(depths)}: give 4 stage depths, e.g. (3, 9, 9, 7)")
        self.dims = (2 * c3, c3, c2, c1)
        block_kwargs = dict(num_heads=num_heads, num_query_tokens=num_query_tokens, num_kv_tokens=num_kv_tokens,
                            use_global_branch=use_global_branch, use_local_branch=use_local_branch, ffn=ffn)
        in_dims = (self.dims[0],) + self.dims[:-1]
        self.stages = nn.ModuleList([
            DecoderStage(in_dim, dim, depth, upsample=i > 0, **block_kwargs)
            for i, (in_dim, dim, depth) in enumerate(zip(in_dims, self.dims, depths))])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Linear: trunc-normal(std 0.02), bias 0; LayerNorm: weight 1, bias 0 (released ``_init_weights``)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=LINEAR_INIT_STD)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args:
            x: neck output ``(B, 2·c3, h, w)``.

        Returns:
            ``[(B, c1, 8h, 8w), (B, c2, 4h, 4w), (B, c3, 2h, 2w)]``, matching the encoder's scale order.
        """
        x = rearrange(x, "b c h w -> b h w c")
        outputs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)  # (B, H_i, W_i, dim_i)
            if i > 0:
                outputs.insert(0, rearrange(x, "b h w c -> b c h w"))
        return outputs
