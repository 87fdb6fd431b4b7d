"""Where the learnable tokens look: attention weights of an Omni-block's global branch, for the notebooks.

:class:`omniad_lite.model.token_attention.TokenAttention` runs fused ``scaled_dot_product_attention`` and never forms
the attention matrix. To *show* it, :func:`query_token_attention` recomputes ``softmax(q kᵀ / sqrt(d))`` of
attention (a) — the learnable query tokens attending to the block's input positions — from the module's own
``q``/``kv`` layers and tokens, and :func:`block_input` captures what a decoder block receives with a forward
pre-hook. Nothing here changes the model. The learnable post-softmax bias (released ``pe2``) is left out on
purpose: it is the same for every position, so it shifts a token's output but not *where* it looks.
:func:`branch_sensitivity` measures how far each branch of a block looks (its effective receptive field).
Paper: arXiv 2503.21125, Fig. 2; released code github easyoo/Omni-AD ``model/omniad.py`` (``ToProxy2``).
"""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from einops import rearrange

from ..errors import InputError
from ..model import omni_block


@torch.no_grad()
def query_token_attention(global_branch, x: torch.Tensor) -> torch.Tensor:
    """Attention of the learnable query tokens (attention (a)) over the positions of ``x``.

    Args:
        global_branch: an :class:`omniad_lite.model.omni_block.GlobalBranch` (``block.global_branch``).
        x: the block's input ``(B, H, W, C)`` (channels last).

    Returns:
        ``(B, heads, Nq, H, W)`` weights; each token's map sums to 1 over ``H × W``.
    """
    attn = global_branch.attn_a
    heads = attn.num_heads
    _, height, width, channels = x.shape
    q = rearrange(attn.q(global_branch.query_tokens), "n (h d) -> h n d", h=heads)  # (heads, Nq, d)
    k, _ = attn.kv(rearrange(x, "b h w c -> b (h w) c")).chunk(2, dim=-1)  # (B, HW, C)
    k = rearrange(k, "b n (h d) -> b h n d", h=heads)  # (B, heads, HW, d)
    scores = torch.einsum("hqd,bhkd->bhqk", q, k) / math.sqrt(channels // heads)  # (B, heads, Nq, HW)
    return rearrange(scores.softmax(dim=-1), "b h q (y x) -> b h q y x", y=height, x=width)


@torch.no_grad()
def block_input(model, images: torch.Tensor, stage: int, block: int = 0) -> torch.Tensor:
    """The input ``(B, H, W, C)`` that decoder ``stage``'s Omni-block number ``block`` receives for ``images``.

    Args:
        model: an :class:`omniad_lite.model.OmniAD` (eval mode recommended: no feature jitter).
        images: ``(B, 3, S, S)`` normalised images.
        stage: decoder stage index (0 = coarsest, 8² for 256² inputs).
        block: block index within the stage.
    """
    stages = model.decoder.stages
    if not 0 <= stage < len(stages) or not 0 <= block < len(stages[stage].blocks):
        raise InputError(f"no decoder block ({stage}, {block}); the decoder has depths "
                         f"{[len(s.blocks) for s in stages]}")
    captured: list[torch.Tensor] = []
    handle = stages[stage].blocks[block].register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        model(images)
    finally:
        handle.remove()
    return captured[0]


def branch_sensitivity(block, x: torch.Tensor, position: tuple[int, int]) -> dict[str, torch.Tensor]:
    """How strongly each input position drives each branch's output at ``position`` (effective receptive field).

    For an Omni-block ``block`` and its input ``x`` ``(1, H, W, C)``, backpropagates a unit gradient from every
    channel of a branch's output at ``position`` and sums ``|∂ out / ∂ x|`` over the input channels (Luo et
    al., NeurIPS 2016, "effective receptive field"). Two things are held fixed so that the maps show where a
    branch takes its *content* from: the global branch's identity terms (``+ m + x`` adds ``x`` twice, which
    only passes the position itself through) are left out, and the InstanceNorm statistics of the local
    branch are treated as constants (each output also depends a little on the whole image through the mean
    and variance it is normalised by; with them frozen the local branch's footprint is its 5 × 5 kernels).

    Args:
        block: an :class:`omniad_lite.model.omni_block.OmniBlock` with both branches.
        x: its input ``(1, H, W, C)``, channels last.
        position: ``(row, col)`` of the output position.

    Returns:
        ``{"global branch": (H, W), "local branch": (H, W)}``, each normalised to sum to 1.
    """
    if block.global_branch is None or block.local_branch is None:
        raise InputError("branch_sensitivity needs a block with both branches")
    row, col = position
    identity = 2.0  # GlobalBranch returns attention terms + m + x, with m = upsampled tokens + x
    branches = {"global branch": lambda t: block.global_branch(t) - identity * t,
                "local branch": block.local_branch}
    fused = omni_block.instance_norm_silu
    # the local branch looks the function up at call time: swap in the frozen-statistics version meanwhile
    omni_block.instance_norm_silu = partial(_frozen_norm_silu, eps=omni_block.INSTANCE_NORM_EPS)
    maps = {}
    try:
        for name, branch in branches.items():
            with torch.enable_grad():
                inp = x.detach().clone().requires_grad_(True)
                branch(inp)[0, row, col].sum().backward()
            grad = inp.grad[0].abs().sum(dim=-1)  # (H, W)
            maps[name] = grad / grad.sum()
    finally:
        omni_block.instance_norm_silu = fused
    return maps


def _frozen_norm_silu(x: torch.Tensor, eps: float) -> torch.Tensor:
    """The local branch's instance norm + SiLU on ``(B, H, W, C)``, its mean and variance detached."""
    var, mean = torch.var_mean(x, dim=(1, 2), keepdim=True, unbiased=False)  # (B, 1, 1, C)
    return F.silu((x - mean.detach()) * torch.rsqrt(var.detach() + eps))
