"""The released optimiser and learning-rate schedule: one builder used by training and every benchmark.

Recipe (released configs ``configs/omniad/*.py`` of github easyoo/Omni-AD, ADer's trainer; docs/method.md):
AdamW with ``lr × batch / 16``, betas (0.9, 0.999), eps 1e-8, weight decay 1e-4 on weights only (parameters
with ``ndim >= 2``; none on biases and 1-D parameters), learning rate × 0.1 from the drop step on
(:func:`lr_drop_step`), no warm-up.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

LR_REFERENCE_BATCH = 16  # released: lr = 1e-3 * batch_train / 16
FUSED_DEVICES = {"cpu", "cuda"}  # where torch.optim.AdamW(fused=True) runs


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on trainable weights with ``ndim >= 2``, none on biases and 1-D parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def scaled_lr(train_cfg, batch_size: int | None = None) -> float:
    """The learning rate used at ``batch_size`` (default: the config's): ``lr × batch / 16``."""
    return train_cfg.lr * (batch_size or train_cfg.batch_size) / LR_REFERENCE_BATCH


def build_optimizer(train_cfg, model: torch.nn.Module, batch_size: int | None = None) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters with the recipe's groups, lr, betas and eps.

    Args:
        train_cfg: a :class:`~omniad_lite.config.TrainConfig`.
        model: the model (its frozen encoder has ``requires_grad=False`` and is left out).
        batch_size: the batch the lr is scaled for (default ``train_cfg.batch_size``; benchmarks pass theirs).
    """
    groups = param_groups(model, train_cfg.weight_decay)
    devices = {p.device.type for g in groups for p in g["params"]}
    # the fused kernel (one pass per tensor; on a CPU ~3x faster than the per-tensor loop) where it exists
    fused = devices <= FUSED_DEVICES and all(p.is_floating_point() for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=scaled_lr(train_cfg, batch_size), betas=tuple(train_cfg.betas),
                             eps=train_cfg.eps, fused=fused or None)


def lr_drop_step(train_cfg, total_steps: int, steps_per_epoch: int) -> int:
    """The first optimiser step (0-based) run at the dropped learning rate.

    With ``train.epochs``, as released: ``int(lr_drop_at · epochs) · steps_per_epoch`` (the released config sets
    ``decay_epochs = int(epoch_full * 0.8)`` and its step scheduler counts it in iterations), so the drop
    falls on an epoch boundary — 5 of 7 epochs, not ``int(0.8 · 7 · steps_per_epoch)``. When that is epoch 0
    (``epochs = 1``; the released scheduler cannot run there, its decay period is 0) there is no drop.
    With ``train.iterations`` (our addition, no epochs to round to): ``int(lr_drop_at · iterations)``.
    """
    if train_cfg.iterations is not None:
        return int(train_cfg.lr_drop_at * total_steps)
    drop_epoch = int(train_cfg.lr_drop_at * train_cfg.epochs)
    return drop_epoch * steps_per_epoch if drop_epoch > 0 else total_steps


def build_scheduler(optimizer: torch.optim.Optimizer, train_cfg, total_steps: int,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Constant lr, × ``lr_drop_factor`` from :func:`lr_drop_step` on (stepped once per optimiser step)."""
    drop = lr_drop_step(train_cfg, total_steps, steps_per_epoch)
    factor = train_cfg.lr_drop_factor
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 if s < drop else factor)


def lr_schedule(train_cfg, total_steps: int, steps_per_epoch: int, batch_size: int | None = None) -> np.ndarray:
    """The learning rate of every optimiser step ``0 .. total_steps - 1`` (what :func:`build_scheduler` gives).

    ``lr(s) = train.lr × batch / 16`` before :func:`lr_drop_step`, × ``train.lr_drop_factor`` from it on; for
    plotting a schedule (the paper's has 226,000 steps) without stepping a scheduler.
    """
    drop = lr_drop_step(train_cfg, total_steps, steps_per_epoch)
    base = scaled_lr(train_cfg, batch_size)
    return np.where(np.arange(total_steps) < drop, base, base * train_cfg.lr_drop_factor)
