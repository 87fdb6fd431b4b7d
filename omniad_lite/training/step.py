"""One optimiser step of the recipe: the trainable forward, precision (autocast), backward, clipping, update.

:class:`TrainStep` is what DDP and ``torch.compile`` wrap (not the bare model), which keeps the frozen encoder
outside the gradient machinery; :func:`optimizer_step` is shared by the trainer and the benchmarks.
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from typing import Callable

import torch

from ..errors import InputError

NATIVE_BF16 = (8, 0)  # CUDA compute capability from which bf16 runs on tensor cores (Ampere)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.precision`` on ``device`` (``None``: fp32, no autocast).

    ``fp32`` is what the released trainer runs. ``bf16`` autocasts matmuls and convolutions to bfloat16
    (CPUs, and GPUs that support it); ``fp16`` autocasts to float16 with a gradient scaler (CUDA only).
    ``auto`` is bf16 on GPUs with native bf16 (compute capability 8.0 and later: A100, L4, H100), fp16 below
    (T4, V100) and fp32 on a CPU. (``torch.cuda.is_bf16_supported()`` also counts emulated bf16, which on a
    T4 would be slower than fp32.)
    """
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.get_device_capability(device) >= NATIVE_BF16 else torch.float16
    if precision == "fp16":
        if device.type != "cuda":
            raise InputError(f"train.precision='fp16' needs a CUDA device (got {device}); use 'bf16' or 'fp32'")
        return torch.float16
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise InputError(f"train.precision='bf16': {torch.cuda.get_device_name(device)} has no bf16 support; "
                             f"use 'fp16' or 'fp32'")
        return torch.bfloat16
    raise InputError(f"train.precision={precision!r} is not one of 'fp32', 'bf16', 'fp16', 'auto'")


def autocast_factory(dtype: torch.dtype | None, device: torch.device) -> Callable:
    """A zero-argument context-manager factory: ``torch.autocast`` at ``dtype``, or a no-op for ``None``."""
    if dtype is None:
        return nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=dtype)


class TrainStep(torch.nn.Module):
    """One training forward: frozen encoder (no grad) → neck → jitter → decoder → loss.

    ``forward(images)``, or ``forward(features=...)`` with cached teacher features.

    Args:
        model: an :class:`~omniad_lite.model.OmniAD`.
        loss_fn: ``loss_fn(features, reconstructions) -> scalar``.
    """

    def __init__(self, model: torch.nn.Module, loss_fn: Callable) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, images: torch.Tensor | None = None,
                features: list[torch.Tensor] | None = None) -> torch.Tensor:
        if features is None:
            with torch.no_grad():
                features = self.model.encoder(images)  # 3 × (B, C_i, H_i, W_i)
        reconstructions = self.model.reconstruct(features)
        return self.loss_fn(features, reconstructions)


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler, trainable: list,
                   grad_clip: float) -> None:
    """Backward, unscale (fp16), clip the global gradient norm to ``grad_clip`` and step (released recipe).

    Args:
        scaler: a ``torch.amp.GradScaler`` (enabled for fp16 only; else a plain backward/step).
        trainable: the parameters whose gradient norm is clipped.
    """
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
    scaler.step(optimizer)
    scaler.update()
