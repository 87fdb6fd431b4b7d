"""Attention through learnable tokens, the building block of the Omni-block's global branch.

Reimplements the ``Attention`` class of the released code (github easyoo/Omni-AD ``model/omniad.py``;
Omni-AD, arXiv 2503.21125, Sec. 3.2): multi-head attention whose scores are ``softmax(q kᵀ / sqrt(d))``
**plus** a learnable bias added after the softmax, followed by an FFN.

Because ``(softmax + bias) v = softmax·v + bias·v``, :class:`TokenAttention` computes the first term with
``torch.nn.functional.scaled_dot_product_attention`` (fused kernels) and adds ``bias·v`` exactly.

Where we differ: the released ``Attention`` builds its FFN inside ``forward``, so its weights are redrawn
from PyTorch's default Linear init at every call, never trained, never saved. :class:`TokenFFN` with
``mode="learned"`` (our default) registers it; ``mode="resampled"`` replays the released behaviour with
functional ops (nothing is built in ``forward``, nothing lands in the ``state_dict``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..config import FFN_MODES
from ..errors import InputError


class TokenFFN(nn.Module):
    """Linear(C, C) → SiLU → Linear(C, C) applied to the attention output.

    Args:
        dim: channels C.
        mode: ``"learned"`` (registered Linear layers) or ``"resampled"`` (weights drawn at every call from
            PyTorch's default Linear init, U(-1/sqrt(C), 1/sqrt(C)) for weights and biases, as the released
            code's per-call ``Mlp``; no parameters).
    """

    def __init__(self, dim: int, mode: str = "learned"):
        super().__init__()
        if mode not in FFN_MODES:
            raise InputError(f"TokenFFN mode={mode!r}; expected one of {FFN_MODES}")
        self.dim, self.mode = dim, mode
        if mode == "learned":
            self.fc1 = nn.Linear(dim, dim)
            self.fc2 = nn.Linear(dim, dim)

    def _random_linear(self, x: torch.Tensor) -> torch.Tensor:
        # nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) → bound 1/sqrt(fan_in); bias the same bound.
        bound = 1.0 / math.sqrt(self.dim)
        weight = torch.empty(self.dim, self.dim, device=x.device, dtype=x.dtype).uniform_(-bound, bound)
        bias = torch.empty(self.dim, device=x.device, dtype=x.dtype).uniform_(-bound, bound)
        return F.linear(x, weight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., C) -> (..., C)``."""
        if self.mode == "learned":
            return self.fc2(F.silu(self.fc1(x)))
        return self._random_linear(F.silu(self._random_linear(x)))


class TokenAttention(nn.Module):
    """Multi-head attention with a learnable post-softmax bias: ``(softmax(q kᵀ/sqrt(d)) + bias) v``.

    Queries and keys/values may be learnable tokens ``(N, C)`` (shared across the batch) or features
    ``(B, N, C)``.

    Args:
        dim: channels C (split into ``num_heads`` heads of ``C / num_heads``).
        num_heads: attention heads (paper: 8).
        num_tokens: number of learnable tokens on the biased side.
        bias_over: ``"queries"`` — bias ``(heads, num_tokens, 1)``, one value per query token, broadcast
            over keys (attention (a)); ``"keys"`` — bias ``(heads, 1, num_tokens)``, one per key token,
            broadcast over queries (attention (b)).
    """

    def __init__(self, dim: int, num_heads: int, num_tokens: int, bias_over: str):
        super().__init__()
        if dim % num_heads:
            raise InputError(f"channels {dim} are not divisible by num_heads={num_heads}")
        if bias_over not in ("queries", "keys"):
            raise InputError(f"bias_over={bias_over!r}; expected 'queries' or 'keys'")
        self.num_heads, self.bias_over = num_heads, bias_over
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        shape = (num_heads, num_tokens, 1) if bias_over == "queries" else (num_heads, 1, num_tokens)
        # Named score_bias, not bias: like the released pe1/pe2 it is a 3-D weight, not a Linear bias, so the
        # usual "no weight decay on biases and 1-D params" rule decays it as the released recipe does.
        self.score_bias = nn.Parameter(torch.zeros(shape))

    def _heads(self, t: torch.Tensor, batch: int) -> torch.Tensor:
        if t.dim() == 2:  # learnable tokens (N, C): shared by the batch; contiguous for fused GPU kernels
            t = t.unsqueeze(0).expand(batch, -1, -1).contiguous()
        return rearrange(t, "b n (h d) -> b h n d", h=self.num_heads)

    def forward(self, queries: torch.Tensor, keys_values: torch.Tensor) -> torch.Tensor:
        """Args:
            queries: ``(B, Nq, C)`` or ``(Nq, C)``.
            keys_values: ``(B, Nk, C)`` or ``(Nk, C)``.

        Returns:
            ``(B, Nq, C)``.
        """
        batch = queries.shape[0] if queries.dim() == 3 else keys_values.shape[0]
        q = self._heads(self.q(queries), batch)  # (B, h, Nq, d)
        k, v = self.kv(keys_values).chunk(2, dim=-1)
        k, v = self._heads(k, batch), self._heads(v, batch)  # (B, h, Nk, d)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / sqrt(d)) v: (B, h, Nq, d)
        if self.bias_over == "queries":  # bias (h, Nq, 1) · v = bias ⊗ Σ_k v_k
            out = out + self.score_bias * v.sum(dim=-2, keepdim=True)  # (B, h, Nq, d)
        else:  # bias (h, 1, Nk) · v, identical for every query
            out = out + torch.matmul(self.score_bias, v)  # (B, h, 1, d) broadcast over Nq
        return rearrange(out, "b h n d -> b n (h d)")
