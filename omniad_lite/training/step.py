"""One optimiser step of the recipe: the trainable forward, mixed precision, backward, clipping, update.

:class:`TrainStep` is what DDP and ``torch.compile`` wrap (not the bare model), which keeps the frozen encoder
outside the gradient machinery; :func:`optimizer_step` is shared by the trainer and the benchmarks.
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from typing import Callable

import torch

NATIVE_BF16 = (8, 0)  # CUDA compute capability from which bf16 runs on tensor cores (Ampere)


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device`` (``None``: full precision).

    ``auto`` is bf16 on GPUs with native bf16 (compute capability 8.0 and later: A100, L4, H100), else fp16
    (with a gradient scaler: T4, V100), and off on CPU. (``torch.cuda.is_bf16_supported()`` also counts
    emulated bf16, which on a T4 would be slower than fp32.)
    """
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.get_device_capability(device) >= NATIVE_BF16 else torch.float16
    if mode == "fp16" and device.type != "cuda":
        raise ValueError(f"train.amp='fp16' needs a CUDA device (got {device}); use 'bf16' or 'off' on CPU")
    return torch.bfloat16 if mode == "bf16" else torch.float16


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
    """Backward, unscale (AMP), clip the global gradient norm to ``grad_clip`` and step (released recipe).

    Args:
        scaler: a ``torch.amp.GradScaler`` (disabled when AMP is off or bf16: then a plain backward/step).
        trainable: the parameters whose gradient norm is clipped.
    """
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
    scaler.step(optimizer)
    scaler.update()
