"""The training engine: the released Omni-AD recipe, resumable, deterministic, multi-process.

``train(cfg, out_dir)`` reads as the list of what a run does: check the run directory and the data, build the
model and the optimiser, restore a checkpoint, fill the teacher-feature cache, loop over optimiser steps
(log, evaluate, checkpoint), evaluate the final model. Each step is one short function below.

Recipe (docs/method.md "Training recipe"; released configs ``configs/omniad/*.py`` of github easyoo/Omni-AD
and ADer's trainer): :mod:`.optim` (AdamW, weight-decay groups, lr drop), :mod:`.step` (loss, clipping,
precision), feature jitter inside the model, seed 42. Where we differ from the released code, on purpose:

- the *final* model's metrics are the headline; the released protocol (per-metric best over periodic
  test evaluations) is recorded separately in ``metrics.json`` under ``best_over_training`` (:mod:`.report`);
- checkpoints are atomic and resumable bit for bit (:mod:`.checkpoint`); a lock keeps a second process out
  of the run directory (:mod:`omniad_lite.lock`); both data splits are checked before training starts;
- ``train.batch_size`` is the global batch under ``torchrun`` (:mod:`.distributed`);
- speed options: bf16/fp16, channels-last, ``torch.compile``, teacher-feature cache (:mod:`.teacher_cache`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import ExperimentConfig
from ..data import dataset_from_config, default_cache_dir
from ..env import seed_everything, versions
from ..errors import ConfigError, InputError, RecoveryWarning, RunStateError, warn
from ..model import build_model, model_preprocess, reconstruction_loss, resolve_preprocess
from ..progress import tqdm
from ..results import TrainResult
from ..run import RunDir
from . import checkpoint as ckpt
from . import distributed as dist_utils
from . import state as ts
from .allocator import keep_freed_memory
from .optim import build_optimizer, build_scheduler
from .report import check_test_split, final_evaluation, periodic_evaluation
from .step import TrainStep, autocast_factory, optimizer_step, resolve_precision
from .teacher_cache import build_cache, cache_key, feature_bytes_per_image, resolve_cache_mode

TEACHER_BATCH = 32  # images per encoder call when filling the teacher-feature cache


@dataclass
class _Run:
    """Everything a training run builds once."""

    cfg: ExperimentConfig
    run: RunDir
    info: dist_utils.DistInfo
    dataset: Any
    steps_per_epoch: int
    total_steps: int
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    autocast: Callable
    step_fn: Callable
    trainable: list
    cache: Any = None


@dataclass
class _Progress:
    """What changes from step to step (and is saved in a checkpoint)."""

    step: int = 0
    evals: list = field(default_factory=list)
    window_loss: torch.Tensor | None = None
    window_count: int = 0
    window_t0: float = 0.0


def check_data(cfg: ExperimentConfig, preprocess, progress: bool):
    """Build the train dataset, failing early and clearly on a missing root or an empty split."""

    if cfg.data.root is not None and not Path(cfg.data.root).is_dir():
        raise FileNotFoundError(f"data root {cfg.data.root} does not exist; pass --data-root DIR "
                                f"(or data.root=null for the demo dataset)")
    dataset = dataset_from_config(cfg.data, "train", preprocess, progress=progress)
    if len(dataset) == 0:
        raise InputError(f"the train split under {cfg.data.root} is empty (classes={cfg.data.classes}); "
                         f"check the dataset layout and data.classes")
    if len(dataset) < cfg.train.batch_size:
        raise InputError(f"the train split has {len(dataset)} images, fewer than train.batch_size="
                         f"{cfg.train.batch_size}; lower the batch size")
    return dataset


def train(cfg: ExperimentConfig, out_dir: str | Path, *, resume: bool | str = False, overwrite: bool = False,
          progress: bool = True, max_steps: int | None = None,
          callback: Callable[[int, torch.nn.Module], None] | None = None, threshold_note: bool = True) -> TrainResult:
    """Train Omni-AD with ``cfg`` and write a run directory.

    Args:
        cfg: the experiment (e.g. ``presets.get("demo")``).
        out_dir: the run directory (see :class:`~omniad_lite.run.RunDir` for its files).
        resume: continue the run in ``out_dir`` from its last checkpoint (same config required); ``"auto"``:
            continue when there is a checkpoint, start fresh when there is none (the notebooks' default).
        overwrite: replace a run already in ``out_dir``.
        progress: show progress bars (main process only).
        max_steps: pause after this many optimiser steps (checkpoint written, no evaluation); resume later.
        callback: called as ``callback(step, model)`` after every optimiser step (notebooks, tests).
        threshold_note: print the one-line note on thresholds that carry a warning (few held-out images);
            ``False`` keeps it in ``thresholds.json`` only (a lesson that introduces thresholds later).

    Returns:
        A :class:`~omniad_lite.results.TrainResult`; its ``evaluation`` is the final model's
        (``None`` when paused by ``max_steps`` and in non-main processes).
    """
    if cfg.method != "omniad":
        raise ConfigError(f"training.train fits Omni-AD, not method={cfg.method!r}; call omniad_lite.train(cfg, "
                          f"out_dir), which runs the config's method")
    info = dist_utils.setup(cfg.train.device)
    lock = None
    try:
        cfg = resolve_preprocess(cfg)
        run = RunDir(out_dir)
        if info.is_main:  # held until the run returns: a second writer is refused, naming this process
            lock = run.lock("train")
        resuming = ts.prepare_run_dir(run, cfg, resume=resume, overwrite=overwrite) if info.is_main else None
        dist_utils.barrier(info)
        if resuming is None:  # other processes: the main process has settled the directory
            resuming = ts.has_checkpoint(run) if resume == "auto" else resume
        r = _build(cfg, run, info, progress and info.is_main)
        prog = _start(r, resuming, progress and info.is_main)
        stop_at = r.total_steps if max_steps is None else min(max_steps, r.total_steps)
        t_start = time.perf_counter()
        with keep_freed_memory(info.device.type == "cpu"):  # CPU: reuse freed buffers step to step
            _loop(r, prog, stop_at, progress and info.is_main, callback)
        return _finish(r, prog, time.perf_counter() - t_start, progress and info.is_main, threshold_note)
    finally:
        if lock is not None:
            lock.release()
        dist_utils.cleanup(info)


def _build(cfg: ExperimentConfig, run: RunDir, info, progress: bool) -> _Run:
    """Data, model, optimiser, scheduler, precision and the (wrapped) train step."""
    t_cfg, device = cfg.train, info.device
    dist_utils.check_batch(t_cfg.batch_size, info)
    dataset = check_data(cfg, model_preprocess(cfg.model), progress)
    if info.is_main:  # the test split too (mask sizes, missing masks, no test folder), before any training
        check_test_split(cfg, model_preprocess(cfg.model), progress)
    steps_per_epoch = len(dataset) // t_cfg.batch_size
    total_steps = t_cfg.iterations if t_cfg.iterations is not None else t_cfg.epochs * steps_per_epoch
    seed_everything(t_cfg.seed + info.rank)  # rank 0 = the single-process run; DDP broadcasts its weights
    model = build_model(cfg.model).to(device)
    if t_cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(t_cfg, model)
    amp_dtype = resolve_precision(t_cfg.precision, device)
    step_module = dist_utils.wrap_model(TrainStep(model, reconstruction_loss), info)
    return _Run(cfg=cfg, run=run, info=info, dataset=dataset, steps_per_epoch=steps_per_epoch,
                total_steps=total_steps, model=model, optimizer=optimizer,
                scheduler=build_scheduler(optimizer, t_cfg, total_steps, steps_per_epoch),
                scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
                autocast=autocast_factory(amp_dtype, device),
                step_fn=torch.compile(step_module) if t_cfg.compile else step_module,
                trainable=[p for p in model.parameters() if p.requires_grad])


def _start(r: _Run, resuming: bool, progress: bool) -> _Progress:
    """Fill the teacher cache, restore a checkpoint (weights, optimiser, RNG), open the run's records.

    The cache is built *before* the RNG states are restored, so a resumed run continues from exactly the
    random state the interrupted one had at its checkpoint.
    """
    r.cache = _teacher_cache(r, progress)
    prog = _Progress()
    state = ckpt.load_checkpoint(r.run, r.model, is_main=r.info.is_main) if resuming else None
    if resuming and state is None and r.info.is_main:
        warn(f"{r.run} holds no checkpoint yet (it stopped before its first, at step "
             f"{r.cfg.train.checkpoint_every}); starting it from step 0", RecoveryWarning)
    if state is not None:
        r.optimizer.load_state_dict(state["optimizer"])
        r.scheduler.load_state_dict(state["scheduler"])
        r.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        ts.restore_rng(rngs[r.info.rank] if len(rngs) == r.info.world_size else rngs[0])
        prog.step, prog.evals = state["step"], state["evals"]
        prog.window_loss, prog.window_count = state["window"]["loss"], state["window"]["count"]
        if r.info.is_main:  # said also without progress bars: a resumed run must say so (e.g. after a disconnect)
            tqdm.write(f"resuming {r.run} from its checkpoint at step {prog.step} of {r.total_steps}")
    if r.info.is_main:
        r.run.save_config(r.cfg, versions())
        r.run.open_history(keep_until_step=prog.step)
    prog.window_loss = torch.tensor(float(prog.window_loss or 0.0), dtype=torch.float32, device=r.info.device)
    prog.window_t0 = time.perf_counter()
    return prog


def _teacher_cache(r: _Run, progress: bool):
    """The teacher-feature cache of the train split (``None`` when ``train.cache_teacher_features="off"``)."""
    t_cfg, pre = r.cfg.train, r.model.preprocess
    size = feature_bytes_per_image(r.model.encoder.channels, r.model.encoder.reductions, pre.image_size)
    mode = resolve_cache_mode(t_cfg.cache_teacher_features, size * len(r.dataset), r.info.device)
    if t_cfg.cache_teacher_features == "auto" and progress:
        tqdm.write(f"teacher-feature cache (auto): {mode}, {size * len(r.dataset) / 2**30:.2f} GiB")
    if mode == "off":
        return None
    key = cache_key(r.cfg.model, pre.image_size, pre.mean, pre.std, [s.image_path for s in r.dataset.samples],
                    t_cfg.seed)
    return build_cache(mode, r.model.encoder, r.dataset, r.info.device,
                       cache_root=Path(r.cfg.data.cache_dir or default_cache_dir()), key=key,
                       batch_size=TEACHER_BATCH, autocast=r.autocast, channels_last=t_cfg.channels_last,
                       progress=progress, is_main=r.info.is_main, barrier=lambda: dist_utils.barrier(r.info))


def _epoch_inputs(r: _Run, step: int):
    """The remaining batches of the epoch containing ``step``: yields the step function's keyword inputs."""
    t_cfg, device = r.cfg.train, r.info.device
    epoch = step // r.steps_per_epoch
    batches = dist_utils.global_batches(len(r.dataset), t_cfg.batch_size, t_cfg.seed, epoch)
    batches = [dist_utils.local_share(b, r.info) for b in batches[step % r.steps_per_epoch:]]
    if r.cache is not None:
        for indices in batches:
            yield {"features": r.cache.batch(indices, device)}
        return
    loader = torch.utils.data.DataLoader(
        r.dataset, batch_sampler=[b.tolist() for b in batches], num_workers=r.cfg.data.num_workers,
        pin_memory=device.type == "cuda",
        # its own generator: a DataLoader iterator otherwise draws a worker seed from the global RNG,
        # which would shift the jitter noise of a resumed run
        generator=torch.Generator().manual_seed(t_cfg.seed + epoch))
    for batch in loader:
        images = batch["image"].to(device, non_blocking=True)  # (B/K, 3, S, S)
        if t_cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        yield {"images": images}


def _loop(r: _Run, prog: _Progress, stop_at: int, progress: bool, callback) -> None:
    """Optimiser steps until ``stop_at``: step, log, evaluate, checkpoint, callback."""
    bar = tqdm(total=r.total_steps, initial=prog.step, desc=f"train {r.cfg.name}", disable=not progress,
               dynamic_ncols=True)
    while prog.step < stop_at:
        for inputs in _epoch_inputs(r, prog.step):
            with r.autocast():
                loss = r.step_fn(**inputs)
            optimizer_step(loss, r.optimizer, r.scaler, r.trainable, r.cfg.train.grad_clip)
            r.scheduler.step()
            prog.window_loss += loss.detach().float()
            prog.window_count += 1
            prog.step += 1
            bar.update(1)
            _after_step(r, prog, stop_at, bar, progress)
            if callback is not None:
                callback(prog.step, r.model)
            if prog.step >= stop_at:
                break
    bar.close()


def _after_step(r: _Run, prog: _Progress, stop_at: int, bar, progress: bool) -> None:
    """Log a history row, run a periodic evaluation, write a checkpoint — each when it is due."""
    t_cfg, step, info = r.cfg.train, prog.step, r.info
    end_of_epoch = step % r.steps_per_epoch == 0
    if step % t_cfg.log_every == 0 or step == stop_at or end_of_epoch:
        _log(r, prog, bar)
    epoch = step // r.steps_per_epoch
    if end_of_epoch and t_cfg.eval_every and epoch % t_cfg.eval_every == 0 and step < r.total_steps:
        if info.is_main:
            prog.evals.append(periodic_evaluation(r.model, r.cfg, step, epoch, info.device, progress))
            r.model.train()
        dist_utils.barrier(info)
    if step % t_cfg.checkpoint_every == 0 or step == stop_at:
        _checkpoint(r, prog)


def _window_mean(r: _Run, prog: _Progress) -> float:
    """Mean loss of the steps since the last log row, averaged over processes; raise if not finite."""
    value = float(dist_utils.mean_across(prog.window_loss / max(prog.window_count, 1), r.info))
    if not math.isfinite(value):
        raise RunStateError(ckpt.non_finite_message(r.run, prog.step, f"the training loss became {value}"))
    return value


def _log(r: _Run, prog: _Progress, bar) -> None:
    """Append a ``history.csv`` row (mean loss since the last row, lr, images/s) and reset the window."""
    mean_loss, now = _window_mean(r, prog), time.perf_counter()
    row = {"step": prog.step, "epoch": prog.step / r.steps_per_epoch, "loss": mean_loss,
           "lr": r.optimizer.param_groups[0]["lr"],
           "images_per_s": prog.window_count * r.cfg.train.batch_size / max(now - prog.window_t0, 1e-9)}
    if r.info.is_main:
        r.run.append_history(row)
    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{row['lr']:.1e}", img_s=f"{row['images_per_s']:.1f}")
    prog.window_loss.zero_()
    prog.window_count, prog.window_t0 = 0, now


def _checkpoint(r: _Run, prog: _Progress) -> None:
    """Save weights and training state (never a non-finite model: the last finite checkpoint is kept)."""
    if prog.window_count:
        _window_mean(r, prog)
    if not ckpt.all_finite(r.model, r.optimizer):  # a finite loss, then an update that overflowed
        raise RunStateError(ckpt.non_finite_message(r.run, prog.step, "the weights became inf/NaN"))
    rngs = dist_utils.gather_objects(ts.capture_rng(), r.info)
    if r.info.is_main:
        ckpt.save_checkpoint(r.run, r.model, {
            "step": prog.step, "epoch": prog.step // r.steps_per_epoch, "total_steps": r.total_steps,
            "optimizer": r.optimizer.state_dict(), "scheduler": r.scheduler.state_dict(),
            "scaler": r.scaler.state_dict(), "rng": rngs, "evals": prog.evals,
            "window": {"loss": float(prog.window_loss), "count": prog.window_count}})


def _finish(r: _Run, prog: _Progress, train_time: float, progress: bool, threshold_note: bool = True) -> TrainResult:
    """The result; at the end of the run (not when paused) the final evaluation and ``metrics.json``."""
    result = TrainResult(run_dir=r.run, steps=prog.step, total_steps=r.total_steps, train_time_s=train_time)
    if prog.step < r.total_steps:
        return result  # paused by max_steps: resume later
    if r.info.is_main:
        result.evaluation = final_evaluation(r.model, r.cfg, r.run, prog.evals, prog.step,
                                             prog.step / r.steps_per_epoch, r.info.device, progress,
                                             train_time_s=train_time, threshold_note=threshold_note)
    dist_utils.barrier(r.info)
    return result
