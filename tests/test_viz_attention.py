"""omniad_lite.token_attention: the recomputed attention weights reproduce the module's own output."""
from __future__ import annotations

import torch
from einops import rearrange

from omniad_lite.model.omni_block import GlobalBranch
from omniad_lite.viz.attention import block_input, query_token_attention


def test_weights_times_values_equal_fused_attention():
    torch.manual_seed(0)
    branch = GlobalBranch(32, num_heads=4, num_query_tokens=16, num_kv_tokens=16).eval()
    with torch.no_grad():
        branch.query_tokens.normal_()  # as after training (zero tokens give uniform-looking queries)
    x = torch.randn(2, 6, 5, 32)  # (B, H, W, C)
    w = query_token_attention(branch, x)  # (B, heads, Nq, H, W)
    assert w.shape == (2, 4, 16, 6, 5)
    torch.testing.assert_close(w.sum(dim=(-2, -1)), torch.ones(2, 4, 16))
    # the module's output with its post-softmax bias at zero is exactly weights @ values
    _, v = branch.attn_a.kv(rearrange(x, "b h w c -> b (h w) c")).chunk(2, dim=-1)
    v = rearrange(v, "b n (h d) -> b h n d", h=4)
    expected = rearrange(torch.einsum("bhqk,bhkd->bhqd", w.flatten(-2), v), "b h n d -> b n (h d)")
    with torch.no_grad():
        actual = branch.attn_a(branch.query_tokens, rearrange(x, "b h w c -> b (h w) c"))
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


def test_block_input_captures_the_stage_input():
    from omniad_lite.config import ModelConfig
    from omniad_lite.model import build_model

    model = build_model(ModelConfig(encoder="resnet18", encoder_weights=None, decoder_depths=(1, 1, 1, 1),
                                    num_query_tokens=4, num_kv_tokens=4)).eval()
    images = torch.randn(1, 3, 64, 64)
    x = block_input(model, images, stage=1)
    with torch.no_grad():
        feats = model.encoder(images)
        fused = model.neck(feats)
        stage0 = model.decoder.stages[0](rearrange(fused, "b c h w -> b h w c"))
        expected = model.decoder.stages[1].upsample(stage0)
    torch.testing.assert_close(x, expected)
    assert len(model.decoder.stages[1].blocks[0]._forward_pre_hooks) == 0  # hook removed
