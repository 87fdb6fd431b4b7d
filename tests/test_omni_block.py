"""Tests for omniad_lite/omni_block.py: SDPA parity with the plain formula, FFN modes, branches."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from omniad_lite.model.omni_block import (
    GlobalBranch,
    LocalBranch,
    OmniBlock,
    instance_norm_channels_last,
    instance_norm_silu,
)
from omniad_lite.model.token_attention import TokenAttention, TokenFFN

DIM, HEADS = 32, 8


def plain_attention(attn: TokenAttention, queries, keys_values, batch):
    """Reference: (softmax(q kᵀ / sqrt(d)) + bias) v written out with explicit matmuls."""
    def heads(t):
        if t.dim() == 2:
            t = t.expand(batch, -1, -1)
        b, n, c = t.shape
        return t.reshape(b, n, HEADS, c // HEADS).permute(0, 2, 1, 3)

    q = heads(attn.q(queries))
    k, v = attn.kv(keys_values).chunk(2, dim=-1)
    k, v = heads(k), heads(v)
    scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)
    scores = scores + attn.score_bias.unsqueeze(0)  # broadcast (1, h, Nq|1, Nk|1) over (B, h, Nq, Nk)
    out = scores @ v  # (B, h, Nq, d)
    return out.permute(0, 2, 1, 3).reshape(batch, -1, DIM)


@pytest.mark.parametrize("bias_over", ["queries", "keys"])
def test_sdpa_equals_plain_formula(bias_over):
    torch.manual_seed(0)
    tokens = 16
    attn = TokenAttention(DIM, HEADS, tokens, bias_over)
    with torch.no_grad():
        attn.score_bias.normal_(0, 0.5)  # non-trivial bias (it is zero at init)
    features = torch.randn(3, 49, DIM)
    learnable = torch.randn(tokens, DIM)
    if bias_over == "queries":  # attention (a): tokens query the features
        got, want = attn(learnable, features), plain_attention(attn, learnable, features, 3)
        assert got.shape == (3, tokens, DIM)
    else:  # attention (b): features query the tokens
        got, want = attn(features, learnable), plain_attention(attn, features, learnable, 3)
        assert got.shape == (3, 49, DIM)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_instance_norm_channels_last_matches_torch():
    x = torch.randn(2, 5, 7, 6) * 3 + 1
    want = nn.InstanceNorm2d(6)(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(instance_norm_channels_last(x), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(instance_norm_silu(x), F.silu(want), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("silu", [False, True])
def test_instance_norm_hand_written_backward_passes_gradcheck(silu):
    """The fused autograd function's backward against finite differences (float64)."""
    x = (torch.randn(2, 3, 4, 5, dtype=torch.float64) * 2 + 0.5).requires_grad_()
    fn = instance_norm_silu if silu else instance_norm_channels_last
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6)


def test_instance_norm_under_bf16_keeps_dtype_and_float32_statistics():
    x = torch.randn(2, 6, 6, 8) * 4 + 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = instance_norm_silu(x.to(torch.bfloat16).requires_grad_())
    assert y.dtype == torch.bfloat16
    want = F.silu(nn.InstanceNorm2d(8)(x.to(torch.bfloat16).float().permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
    torch.testing.assert_close(y.float(), want, atol=2e-2, rtol=2e-2)  # bf16 output rounding only


def plain_local_branch(branch: LocalBranch, x):
    """Reference: NCHW convs and nn.InstanceNorm2d as the released DWConv / mlp modules run them."""
    def separable(conv, t):
        t = F.silu(nn.InstanceNorm2d(t.shape[1])(conv.depthwise(t)))
        return F.silu(nn.InstanceNorm2d(t.shape[1])(conv.pointwise(t)))

    t = x.permute(0, 3, 1, 2).contiguous()
    y = torch.cat([separable(branch.conv3, t), separable(branch.conv5, t)], dim=1)
    return F.silu(nn.InstanceNorm2d(y.shape[1] // 2)(branch.fuse(y))).permute(0, 2, 3, 1)


def assert_same_forward_and_backward(module, reference, x: torch.Tensor) -> None:
    """``module(x)`` equals ``reference(x)``, and so do the gradients of ``x`` and of every parameter."""
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    got, want = module(x1), reference(x2)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(got)
    got_grads = torch.autograd.grad(got, [x1, *module.parameters()], grad)
    want_grads = torch.autograd.grad(want, [x2, *module.parameters()], grad)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_local_branch_matches_reference_forward_and_backward():
    torch.manual_seed(0)
    branch = LocalBranch(DIM)
    assert_same_forward_and_backward(branch, lambda x: plain_local_branch(branch, x), torch.randn(2, 9, 7, DIM))


def test_learned_ffn_is_registered_and_deterministic():
    ffn = TokenFFN(DIM, "learned")
    assert set(ffn.state_dict()) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    x = torch.randn(2, 4, DIM)
    assert torch.equal(ffn(x), ffn(x))


def test_resampled_ffn_replays_default_linear_init():
    dim = 256
    ffn = TokenFFN(dim, "resampled")
    assert len(ffn.state_dict()) == 0 and len(list(ffn.parameters())) == 0
    x = torch.randn(2, 4, dim)
    assert not torch.allclose(ffn(x), ffn(x))  # redrawn at every call, as in the released code
    # Recover one draw's weight: linear(I) - linear(0) with the same random state = Wᵀ.
    torch.manual_seed(1)
    with_eye = ffn._random_linear(torch.eye(dim))
    torch.manual_seed(1)
    only_bias = ffn._random_linear(torch.zeros(dim, dim))
    weight = (with_eye - only_bias).T
    bias = only_bias[0]
    reference = nn.Linear(dim, dim)  # PyTorch's default init: the distribution the released Mlp used
    bound = 1 / math.sqrt(dim)
    assert weight.abs().max() <= bound + 1e-6 and bias.abs().max() <= bound + 1e-6
    assert weight.std().item() == pytest.approx(reference.weight.std().item(), rel=0.03)
    assert weight.mean().item() == pytest.approx(0.0, abs=3e-4)


def plain_global_branch(g: GlobalBranch, x):
    """Reference wiring of the global branch (docs/method.md: (a) tokens→x, resize, m; (b) m→tokens)."""
    b, h, w, c = x.shape
    a = g.ffn_a(plain_attention(g.attn_a, g.query_tokens, x.reshape(b, h * w, c), b))
    a = F.interpolate(a.reshape(b, g.grid, g.grid, c).permute(0, 3, 1, 2), size=(h, w), mode="nearest")
    m = a.permute(0, 2, 3, 1) + x
    out = g.ffn_b(plain_attention(g.attn_b, m.reshape(b, h * w, c), g.kv_tokens, b))
    return out.reshape(b, h, w, c) + m + x


@pytest.mark.parametrize("height,width", [(8, 12), (10, 6)])  # grid 4 divides 8x12 (broadcast path), not 10x6
def test_global_branch_matches_reference(height, width):
    torch.manual_seed(0)
    g = GlobalBranch(DIM, HEADS, num_query_tokens=16, num_kv_tokens=9)
    with torch.no_grad():
        for p in (g.query_tokens, g.kv_tokens, g.attn_a.score_bias, g.attn_b.score_bias):
            p.normal_()  # zero at init; randomise to exercise every term
    assert_same_forward_and_backward(g, lambda x: plain_global_branch(g, x), torch.randn(2, height, width, DIM))


def test_omni_block_shapes_and_param_count():
    block = OmniBlock(DIM, num_heads=HEADS, num_query_tokens=64, num_kv_tokens=64)
    x = torch.randn(2, 6, 6, DIM)
    assert block(x).shape == x.shape
    c = DIM
    # q(a), kv(a), q(b), kv(b), merge x2: Linear with bias; tokens 2·64·C; biases 2·8·64;
    # local: dw3 + dw5 + 2 pointwise + fuse (2C→C), all with bias; FFN 2 per attention.
    expected = (c * c + c) + (2 * c * c + 2 * c) + (c * c + c) + (2 * c * c + 2 * c) + 2 * (c * c + c) \
        + 2 * 64 * c + 2 * HEADS * 64 \
        + (9 * c + c) + (25 * c + c) + 2 * (c * c + c) + (2 * c * c + c) \
        + 4 * (c * c + c)
    assert sum(p.numel() for p in block.parameters()) == expected


def test_ablation_knobs():
    x = torch.randn(1, 4, 4, DIM)
    local_only = OmniBlock(DIM, num_heads=HEADS, use_global_branch=False)
    global_only = OmniBlock(DIM, num_heads=HEADS, use_local_branch=False)
    assert local_only.global_branch is None and local_only(x).shape == x.shape
    assert global_only.local_branch is None and global_only(x).shape == x.shape
    with pytest.raises(ValueError, match="at least one"):
        OmniBlock(DIM, use_global_branch=False, use_local_branch=False)
    with pytest.raises(ValueError, match="perfect square"):
        GlobalBranch(DIM, HEADS, num_query_tokens=10)
    with pytest.raises(ValueError, match="divisible"):
        TokenAttention(30, 8, 4, "keys")
