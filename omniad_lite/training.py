"""The training engine: the released Omni-AD recipe, resumable, deterministic, multi-process.

Recipe (SPEC.md "Training recipe"; released configs ``configs/omniad/*.py`` of github easyoo/Omni-AD and
ADer's trainer): AdamW with ``lr × batch/16``, betas (0.9, 0.999), eps 1e-8, weight decay 1e-4 on weights
only (parameters with ``ndim >= 2``; none on biases and 1-D parameters), lr × 0.1 after 80 % of the
iterations, no warm-up, gradient-norm clip 5, feature jitter inside the model (training mode), loss =
MSE over the three scales (:func:`omniad_lite.model.reconstruction_loss`), seed 42.

Where we differ from the released code, on purpose:

- the *final* model's metrics are the headline; the released protocol (per-metric best over periodic
  test evaluations) is recorded separately in ``metrics.json`` under ``best_over_training``;
- checkpoints are atomic and resumable bit for bit (:mod:`omniad_lite.train_state`);
- ``train.batch_size`` is the global batch under ``torchrun`` (:mod:`omniad_lite.train_distributed`);
- speed options: AMP, channels-last, ``torch.compile``, teacher-feature cache
  (:mod:`omniad_lite.train_teacher_cache`); the encoder always runs under ``torch.no_grad``.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from . import train_distributed as dist_utils
from . import train_state as ts
from .checkpoint import load_run, save_config
from .config import ExperimentConfig
from .train_report import eval_cli, final_evaluation, periodic_evaluation, train_cli
from .utils import seed_everything, versions

__all__ = ["train", "train_cli", "eval_cli", "load_run", "param_groups", "resolve_amp", "TrainStep"]

LR_REFERENCE_BATCH = 16  # released: lr = 1e-3 * batch_train / 16
TEACHER_BATCH = 32  # images per encoder call when filling the teacher-feature cache


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on trainable weights with ``ndim >= 2``, none on biases and 1-D parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device`` (``None``: full precision).

    ``auto`` is bf16 on GPUs that support it, else fp16 (with a gradient scaler), and off on CPU.
    """
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if mode == "fp16" and device.type != "cuda":
        raise ValueError(f"train.amp='fp16' needs a CUDA device (got {device}); use 'bf16' or 'off' on CPU")
    return torch.bfloat16 if mode == "bf16" else torch.float16


class TrainStep(torch.nn.Module):
    """One training forward: frozen encoder (no grad) → neck → jitter → decoder → loss.

    Wrapping this (not the bare model) in DDP/``torch.compile`` keeps the frozen encoder outside the
    gradient machinery. ``forward(images)`` or ``forward(features=...)`` with cached teacher features.
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


def _check_data(cfg: ExperimentConfig, mean, std, progress: bool):
    """Build the train dataset, failing early and clearly on a missing root or an empty split."""
    from .data import dataset_from_config

    if cfg.data.root is not None and not Path(cfg.data.root).is_dir():
        raise FileNotFoundError(f"data root {cfg.data.root} does not exist; pass --data-root DIR "
                                f"(or data.root=null for the demo dataset)")
    dataset = dataset_from_config(cfg.data, "train", mean, std, progress=progress)
    if len(dataset) == 0:
        raise ValueError(f"the train split under {cfg.data.root} is empty (classes={cfg.data.classes}); "
                         f"check the dataset layout and data.classes")
    if len(dataset) < cfg.train.batch_size:
        raise ValueError(f"the train split has {len(dataset)} images, fewer than train.batch_size="
                         f"{cfg.train.batch_size}; lower the batch size")
    return dataset


def train(cfg: ExperimentConfig, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, max_steps: int | None = None,
          callback: Callable[[int, torch.nn.Module], None] | None = None) -> dict[str, Any]:
    """Train Omni-AD with ``cfg`` and write a run directory.

    Args:
        cfg: the experiment (e.g. ``presets.get("demo")``).
        out_dir: run directory (config.json, history.csv, model.safetensors, train_state.pt, metrics.*).
        resume: continue the run in ``out_dir`` from its last checkpoint (same config required).
        overwrite: replace a run already in ``out_dir``.
        progress: show progress bars (main process only).
        max_steps: pause after this many optimiser steps (checkpoint written, no evaluation); resume later.
        callback: called as ``callback(step, model)`` after every optimiser step (notebooks, tests).

    Returns:
        ``dict(run_dir, steps, train_time_s, metrics)``; ``metrics`` is the final per-class table
        (``None`` when paused by ``max_steps`` and in non-main processes).
    """
    info = dist_utils.setup(cfg.train.device)
    try:
        return _train(cfg, Path(out_dir), info, resume=resume, overwrite=overwrite,
                      progress=progress and info.is_main, max_steps=max_steps, callback=callback)
    finally:
        dist_utils.cleanup(info)


def _train(cfg, run_dir, info, *, resume, overwrite, progress, max_steps, callback) -> dict[str, Any]:
    from .model import build_model, encoder_mean_std, reconstruction_loss

    t_cfg, device = cfg.train, info.device
    resuming = ts.prepare_run_dir(run_dir, cfg, resume=resume, overwrite=overwrite) if info.is_main else resume
    dist_utils.barrier(info)
    dist_utils.check_batch(t_cfg.batch_size, info)
    mean, std = encoder_mean_std(cfg.model.encoder)
    dataset = _check_data(cfg, mean, std, progress)
    steps_per_epoch = len(dataset) // t_cfg.batch_size
    total_steps = t_cfg.iterations if t_cfg.iterations is not None else t_cfg.epochs * steps_per_epoch
    drop_step = int(t_cfg.lr_drop_at * total_steps)

    seed_everything(t_cfg.seed + info.rank)  # rank 0 = the single-process run; DDP broadcasts its weights
    model = build_model(cfg.model).to(device)
    if t_cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    lr = t_cfg.lr * t_cfg.batch_size / LR_REFERENCE_BATCH
    optimizer = torch.optim.AdamW(param_groups(model, t_cfg.weight_decay), lr=lr, betas=t_cfg.betas,
                                  eps=t_cfg.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 1.0 if s < drop_step else t_cfg.lr_drop_factor)
    amp_dtype = resolve_amp(t_cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    autocast = (partial(torch.autocast, device_type=device.type, dtype=amp_dtype) if amp_dtype is not None
                else nullcontext)

    step, evals, window = 0, [], {"loss": 0.0, "count": 0}
    if resuming:
        state = ts.load_checkpoint(run_dir, model)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        ts.restore_rng(rngs[info.rank] if len(rngs) == info.world_size else rngs[0])
        step, evals, window = state["step"], state["evals"], state["window"]
    if info.is_main:
        save_config(run_dir, cfg, versions())
        ts.open_history(run_dir, keep_until_step=step)

    step_module = dist_utils.wrap_model(TrainStep(model, reconstruction_loss), info)
    step_fn = torch.compile(step_module) if t_cfg.compile else step_module
    trainable = [p for p in model.parameters() if p.requires_grad]

    cache = None
    if t_cfg.cache_teacher_features != "off":
        from .data import default_cache_dir
        from .train_teacher_cache import build_cache, cache_key

        key = cache_key(cfg.model, cfg.data.image_size, mean, std, [s.image_path for s in dataset.samples],
                        t_cfg.seed)
        cache = build_cache(t_cfg.cache_teacher_features, model.encoder, dataset, device,
                            cache_root=Path(cfg.data.cache_dir or default_cache_dir()), key=key,
                            batch_size=TEACHER_BATCH, autocast=autocast, channels_last=t_cfg.channels_last,
                            progress=progress, is_main=info.is_main, barrier=lambda: dist_utils.barrier(info))

    stop_at = total_steps if max_steps is None else min(max_steps, total_steps)
    window_loss = torch.tensor(window["loss"], dtype=torch.float32, device=device)
    window_count, window_t0 = window["count"], time.perf_counter()
    bar = tqdm(total=total_steps, initial=step, desc=f"train {cfg.name}", disable=not progress, dynamic_ncols=True)
    t_start = time.perf_counter()

    def window_mean() -> float:
        """Mean loss of the steps since the last log row, averaged over processes; raise if not finite."""
        value = float(dist_utils.mean_across(window_loss / max(window_count, 1), info))
        if not math.isfinite(value):
            raise RuntimeError(f"the training loss became {value} at or before step {step}; stopped. The "
                               f"last good checkpoint in {run_dir} is kept: lower train.lr, set train.amp="
                               f"off or check the data, then start again or --resume")
        return value

    while step < stop_at:
        epoch = step // steps_per_epoch
        batches = dist_utils.global_batches(len(dataset), t_cfg.batch_size, t_cfg.seed, epoch)
        batches = [dist_utils.local_share(b, info) for b in batches[step % steps_per_epoch:]]
        loader = None if cache is not None else iter(torch.utils.data.DataLoader(
            dataset, batch_sampler=[b.tolist() for b in batches], num_workers=cfg.data.num_workers,
            pin_memory=device.type == "cuda",
            # its own generator: a DataLoader iterator otherwise draws a worker seed from the global RNG,
            # which would shift the jitter noise of a resumed run
            generator=torch.Generator().manual_seed(t_cfg.seed + epoch)))
        for indices in batches:
            if cache is not None:
                inputs = {"features": cache.batch(indices, device)}
            else:
                images = next(loader)["image"].to(device, non_blocking=True)  # (B/K, 3, S, S)
                if t_cfg.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                inputs = {"images": images}
            with autocast():
                loss = step_fn(**inputs)
            optimizer_step(loss, optimizer, scaler, trainable, t_cfg.grad_clip)
            scheduler.step()
            window_loss += loss.detach().float()
            window_count += 1
            step += 1
            bar.update(1)
            end_of_epoch = step % steps_per_epoch == 0
            if step % t_cfg.log_every == 0 or step == stop_at or end_of_epoch:
                mean_loss, now = window_mean(), time.perf_counter()
                row = {"step": step, "epoch": step / steps_per_epoch, "loss": mean_loss,
                       "lr": optimizer.param_groups[0]["lr"],
                       "images_per_s": window_count * t_cfg.batch_size / max(now - window_t0, 1e-9)}
                if info.is_main:
                    ts.append_history(run_dir, row)
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{row['lr']:.1e}", img_s=f"{row['images_per_s']:.1f}")
                window_loss.zero_()
                window_count, window_t0 = 0, now
            if (end_of_epoch and t_cfg.eval_every and (step // steps_per_epoch) % t_cfg.eval_every == 0
                    and step < total_steps):
                if info.is_main:
                    evals.append(periodic_evaluation(model, cfg, step, step // steps_per_epoch, device, progress))
                    model.train()
                dist_utils.barrier(info)
            if step % t_cfg.checkpoint_every == 0 or step == stop_at:
                if window_count:
                    window_mean()  # never checkpoint a non-finite model
                rngs = dist_utils.gather_objects(ts.capture_rng(), info)
                if info.is_main:
                    ts.save_checkpoint(run_dir, model, {
                        "step": step, "epoch": step // steps_per_epoch, "total_steps": total_steps,
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(), "rng": rngs, "evals": evals,
                        "window": {"loss": float(window_loss), "count": window_count}})
            if callback is not None:
                callback(step, model)
            if step >= stop_at:
                break
    bar.close()
    train_time = time.perf_counter() - t_start
    result = {"run_dir": run_dir, "steps": step, "total_steps": total_steps, "train_time_s": train_time,
              "metrics": None}
    if step < total_steps:
        return result  # paused by max_steps: resume later
    if info.is_main:
        result["metrics"] = final_evaluation(model, cfg, run_dir, evals, step, step / steps_per_epoch, device, progress,
                                             train_time_s=train_time)
    dist_utils.barrier(info)
    return result
