"""Tests for omniad_lite/decoder.py: released sizes, shapes, pixel-shuffle order, init."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from omniad_lite.model.decoder import Decoder, Upsample

RESNET34_CHANNELS = [64, 128, 256]
PAPER_DEPTHS = (3, 9, 9, 7)
PAPER_DECODER_PARAMS = {"learned": 26_529_600, "resampled": 20_298_304}  # docs/method.md, measured on the released code
SMALL = dict(depths=(1, 1, 1, 1), num_heads=4, num_query_tokens=4, num_kv_tokens=4)


@pytest.mark.parametrize("ffn", ["learned", "resampled"])
def test_paper_param_counts(ffn):
    decoder = Decoder(RESNET34_CHANNELS, PAPER_DEPTHS, ffn=ffn)
    assert decoder.dims == (512, 256, 128, 64)
    assert sum(p.numel() for p in decoder.parameters()) == PAPER_DECODER_PARAMS[ffn]


def test_output_shapes_match_encoder_scales():
    decoder = Decoder([8, 16, 32], **SMALL)
    out = decoder(torch.randn(2, 64, 2, 2))
    assert [tuple(o.shape) for o in out] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]


def test_upsample_is_pixel_shuffle_then_layernorm():
    up = Upsample(6, 3)
    x = torch.randn(2, 4, 5, 6)  # (B, H, W, C)
    projected = up.proj(x)  # (B, H, W, 4·out) laid out as (p1 p2 c)
    nchw = rearrange(projected, "b h w (p1 p2 c) -> b (c p1 p2) h w", p1=2, p2=2)
    shuffled = F.pixel_shuffle(nchw, 2).permute(0, 2, 3, 1)  # torch's own pixel shuffle, (B, 2H, 2W, out)
    want = F.layer_norm(shuffled, (3,), up.norm.weight, up.norm.bias)
    torch.testing.assert_close(up(x), want)


def test_init():
    torch.manual_seed(0)
    decoder = Decoder(RESNET34_CHANNELS, (1, 1, 1, 1))
    linears = [m for m in decoder.modules() if isinstance(m, nn.Linear)]
    big = torch.cat([m.weight.flatten() for m in linears])
    # timm's trunc_normal_ cuts at ±2 absolute (not ±2 std), as in the released code: plain N(0, 0.02²)
    assert big.std().item() == pytest.approx(0.02, rel=0.05) and big.mean().abs().item() < 1e-4
    assert all(torch.all(m.bias == 0) for m in linears if m.bias is not None)
    block = decoder.stages[0].blocks[0]
    assert torch.all(block.global_branch.query_tokens == 0) and torch.all(block.global_branch.attn_a.score_bias == 0)
    norms = [m for m in decoder.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 3 and all(torch.all(n.weight == 1) and torch.all(n.bias == 0) for n in norms)


def test_bad_depths():
    with pytest.raises(ValueError, match="4 stage depths"):
        Decoder([8, 16, 32], (1, 1, 1))
