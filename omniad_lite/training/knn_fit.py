"""Fit the kNN baseline on a train split and write it as a run directory, like ``train`` does for Omni-AD.

:func:`train_knn` is what ``omniad_lite.train`` runs for ``method="knn"`` (``omniad-lite train --method knn``):
the same config (teacher, input size, normalisation, data, seed), the same test split, metrics and
thresholds (:func:`~omniad_lite.training.report.final_evaluation`, the run writer every method ends with),
and a run directory that :func:`omniad_lite.load_run` loads back (``config.json``, ``knn.json``,
``model.safetensors`` holding the teacher and the memory bank, ``metrics.json``, ``thresholds.json``).
"Training" is one pass of the teacher over the train split plus the coreset selection; there are no
optimiser steps.

With ``train.cache_teacher_features="disk"`` the teacher features come from the same on-disk cache Omni-AD's
training fills (one encoder pass shared by every run of a sweep).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import torch

from ..baselines.coreset import MemoryBankBuilder, coreset_target
from ..baselines.knn import KnnConfig, PatchKNN, build_knn, patch_embeddings
from ..config import ExperimentConfig
from ..data import default_cache_dir
from ..env import resolve_device, seed_everything, versions
from ..errors import ConfigError
from ..files import write_json
from ..model import resolve_preprocess
from ..progress import tqdm
from ..results import TrainResult
from ..run import RunDir
from .loop import check_data
from .report import final_evaluation
from .state import prepare_run_dir
from .teacher_cache import build_cache, cache_key

FEATURE_BATCH = 32  # train images per encoder call


def _train_features(cfg: ExperimentConfig, model: PatchKNN, dataset, device: torch.device,
                    progress: bool) -> Iterator[list[torch.Tensor]]:
    """The teacher's three maps for the train split, batch by batch (from the disk cache when configured)."""
    if cfg.train.cache_teacher_features == "disk":
        pre = model.preprocess
        key = cache_key(cfg.model, pre.image_size, pre.mean, pre.std, [s.image_path for s in dataset.samples],
                        cfg.train.seed)
        cache = build_cache("disk", model.encoder, dataset, device,
                            cache_root=Path(cfg.data.cache_dir or default_cache_dir()), key=key,
                            batch_size=FEATURE_BATCH, autocast=nullcontext, channels_last=False, progress=progress)
        for start in range(0, len(dataset), FEATURE_BATCH):
            yield cache.batch(torch.arange(start, min(start + FEATURE_BATCH, len(dataset))), device)
        return
    loader = torch.utils.data.DataLoader(dataset, batch_size=FEATURE_BATCH, shuffle=False,
                                         num_workers=cfg.data.num_workers)
    for batch in tqdm(loader, desc="teacher features", disable=not progress, leave=False):
        with torch.no_grad():
            yield model.encoder(batch["image"].to(device))


def fit_knn(cfg: ExperimentConfig, knn: KnnConfig | None = None, *, progress: bool = True) -> PatchKNN:
    """Build the memory bank of ``cfg``'s train split; return the fitted :class:`PatchKNN` (eval mode).

    Args:
        cfg: the experiment: teacher (``model.encoder``, ``encoder_weights``, ``out_indices``), input size and
            normalisation, data, ``train.seed`` (coreset start and projection), ``train.device``.
        knn: the baseline's settings (default :class:`KnnConfig`).
        progress: show progress bars.
    """
    knn = knn or KnnConfig()
    cfg = resolve_preprocess(cfg)
    device = resolve_device(cfg.train.device)
    seed_everything(cfg.train.seed)  # a random-init teacher is drawn from this seed, as in train()
    model = build_knn(cfg.model, knn, torch.empty(0, 0)).to(device).eval()
    dataset = check_data(cfg.with_overrides({"train.batch_size": 1}), model.preprocess, progress)
    builder = None
    for feats in _train_features(cfg, model, dataset, device, progress):
        emb = patch_embeddings(feats, knn.scales, knn.patch_size)  # (B, D, h, w)
        b, d, h, w = emb.shape
        if builder is None:
            target = coreset_target(len(dataset) * h * w, knn.coreset_ratio, knn.coreset_size)
            builder = MemoryBankBuilder(target, knn.max_candidates, projection_dim=knn.projection_dim,
                                        seed=cfg.train.seed, progress=progress)
        builder.add(emb.permute(0, 2, 3, 1).reshape(b * h * w, d))  # (B·h·w, D)
    model.memory_bank = builder.finish()
    model.peak_candidates = builder.peak_rows  # for the memory test and metrics.json
    return model


def train_knn(cfg: ExperimentConfig, out_dir: str | Path, knn: KnnConfig | None = None, *,
              overwrite: bool = False, progress: bool = True) -> TrainResult:
    """Fit the kNN baseline, save it as a run directory, evaluate it and calibrate its thresholds.

    Args:
        cfg: the experiment (as for :func:`omniad_lite.train`; ``method="knn"``).
        out_dir: the run directory.
        knn: the baseline's settings (default :class:`KnnConfig`), saved as ``knn.json``.
        overwrite: replace a run already in ``out_dir``.
        progress: show progress bars.

    Returns:
        A :class:`~omniad_lite.results.TrainResult` with ``steps=0``, the fit time as ``train_time_s`` and the
        test-split :class:`~omniad_lite.results.EvalResult`.
    """
    if cfg.method != "knn":
        raise ConfigError(f"train_knn fits method='knn', the config says {cfg.method!r}; set method=knn")
    knn = knn or KnnConfig()
    cfg = resolve_preprocess(cfg)
    run = RunDir(out_dir)
    lock = run.lock("train")  # one writer per run directory, as for an Omni-AD run
    try:
        prepare_run_dir(run, cfg, resume=False, overwrite=overwrite)
        t0 = time.perf_counter()
        model = fit_knn(cfg, knn, progress=progress)
        fit_time = time.perf_counter() - t0
        run.save_config(cfg, versions())
        write_json(run / RunDir.KNN, knn.to_dict())
        run.save_model(model, metadata={"method": "knn"})
        rows, dim = model.memory_bank.shape
        result = final_evaluation(model, cfg, run, [], 0, 0.0, model.memory_bank.device, progress,
                                  train_time_s=fit_time, extra={"memory_bank": {
                                      "rows": rows, "dim": dim, "peak_candidates": model.peak_candidates}})
    finally:
        lock.release()
    return TrainResult(run_dir=run, steps=0, total_steps=0, train_time_s=fit_time, evaluation=result)
