"""Evaluate a model on a test split: per-class metrics under an explicit protocol, as an :class:`EvalResult`.

Reimplements the test loop of the released code (github easyoo/Omni-AD ``trainer``, ADer's ``evaluator``):
run the test split, build each image's anomaly map (:func:`~omniad_lite.model.anomaly_map.anomaly_map`),
image score = max, metrics per class, then the class mean. Where we differ:

- the protocol is explicit (``"kit"``: exact definitions, or ``"released"``) and recorded in the result;
- the final model is evaluated once (no best-over-training selection; training records that separately);
- memory is bounded: test sets up to ``EXACT_MAX_PIXELS`` map pixels are scored exactly, larger ones
  (Real-IAD) stream through one :class:`~omniad_lite.evaluation.stream.MetricAccumulator` per class;
- evaluation is deterministic and restores the model's mode (:mod:`.inference`).
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from ..config import ExperimentConfig
from ..data import dataset_from_config
from ..env import resolve_device
from ..errors import InputError, MetricWarning, warn
from ..results import MEAN_ROW, EvalResult
from ..run import RunDir
from .inference import iter_maps
from .metric_tables import metrics_table
from .metrics import compute_metrics
from .mvtec_ad2_protocol import PROTOCOL as MVTEC_AD2
from .mvtec_ad2_protocol import evaluate_mvtec_ad2
from .run_loading import LoadedRun, load_run
from .stream import MetricAccumulator

PER_IMAGE_COLUMNS = ["path", "cls_name", "label", "score", "mask_valid"]
RECORD_MODES = (None, "beside", "replace")
DEFAULT_BATCH = 16
EXACT_MAX_PIXELS = 160_000_000  # ≈ 0.8 GB of float32 maps + masks; MVTec-AD (113 M) and VisA (142 M) fit


class _Collector:
    """Per-class scores, labels, maps and masks: kept whole (exact) or streamed into accumulators."""

    def __init__(self, protocol: str, streaming: bool, allow_undefined: bool, keep_maps: bool):
        self.protocol, self.streaming, self.allow_undefined, self.keep_maps = (
            protocol, streaming, allow_undefined, keep_maps)
        self.accs: dict[str, MetricAccumulator] = {}
        self.exact: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.rows: list[dict] = []
        self.kept: dict[str, list] = defaultdict(list)

    def add(self, batch: dict, maps: np.ndarray, scores: np.ndarray) -> None:
        masks = batch["mask"].numpy()[:, 0] > 0.5  # (B, S, S)
        labels = np.asarray(batch["label"]).astype(np.int64)
        valid = np.asarray(batch.get("mask_valid", np.ones(len(labels), bool))).astype(bool)  # (B,) mask known
        names = list(batch["cls_name"])
        for cls in dict.fromkeys(names):  # classes of this batch, in order of appearance
            sel = np.array([n == cls for n in names])
            if self.streaming:
                acc = self.accs.setdefault(cls, MetricAccumulator(self.protocol, allow_undefined=self.allow_undefined))
                acc.update(scores[sel], labels[sel], maps[sel], masks[sel], pixel_valid=valid[sel])
            else:
                for k, v in (("scores", scores), ("labels", labels), ("maps", maps), ("masks", masks),
                             ("valid", valid)):
                    self.exact[cls][k].append(v[sel])
        self.rows += [{"path": p, "cls_name": c, "label": int(y), "score": float(s), "mask_valid": bool(v)}
                      for p, c, y, s, v in zip(batch["path"], names, labels, scores, valid)]
        if self.keep_maps:
            self.kept["maps"].append(maps.astype(np.float16))
            self.kept["masks"].append(masks.astype(np.uint8))

    def per_class(self) -> dict[str, dict[str, float]]:
        out = {}
        for cls in sorted(self.accs if self.streaming else self.exact):
            try:
                if self.streaming:
                    out[cls] = self.accs[cls].compute()
                else:
                    d = {k: np.concatenate(v) for k, v in self.exact.pop(cls).items()}
                    out[cls] = compute_metrics(d["scores"], d["labels"], d["maps"], d["masks"], self.protocol,
                                               allow_undefined=self.allow_undefined, pixel_valid=d["valid"])
            except ValueError as e:
                raise InputError(f"class {cls!r}: {e}") from None
        return out


def evaluate(model_or_run, data=None, *, protocol: str = "kit", batch_size: int | None = None, device="auto",
             keep_maps: bool = False, progress: bool = True, num_workers: int = 0, streaming: bool | None = None,
             rounded: bool = True, allow_undefined: bool | None = None, record: str | None = None) -> EvalResult:
    """Evaluate a model or a saved run on a test split: per-class metrics under one protocol.

    Args:
        model_or_run: a model (``OmniAD``, ``PatchKNN``), a :class:`~.run_loading.LoadedRun` or a run directory.
        data: what to evaluate on: a dataset (items ``{"image" (3, S, S), "mask" (1, S, S), "label",
            "cls_name", "path"}`` and optionally ``"mask_valid"``: False for an anomalous image without a
            mask, left out of the pixel metrics), an :class:`~omniad_lite.config.ExperimentConfig` (its test
            split), a dataset root (a run's test split from another root) or ``None`` (a run's own test split).
        protocol: ``"kit"`` or ``"released"`` (see :mod:`omniad_lite.evaluation.metrics`); for a run also
            ``"mvtec_ad2"`` (:func:`~omniad_lite.evaluation.mvtec_ad2_protocol.evaluate_mvtec_ad2`).
        batch_size: images per forward pass (``None``: the config's ``train.batch_size``, else 16).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda:0"``, ...
        keep_maps: also keep every map (float16) and mask in the result, in dataset order.
        progress: show a progress bar.
        num_workers: DataLoader workers.
        streaming: ``True`` histogram accumulators (bounded memory, ~1e-4 accurate), ``False`` exact,
            ``None`` exact when the split has at most ``EXACT_MAX_PIXELS`` map pixels.
        rounded: round the table to one decimal like the papers (``per_class`` keeps the fractions).
        allow_undefined: NaN instead of an error for a class whose metrics are undefined (e.g. no anomalies);
            ``None``: allowed (with a :class:`~omniad_lite.errors.MetricWarning`) for a config's test split.
        record: for a run: ``"beside"`` writes ``evaluations/<time>-<protocol>.json/.csv``, ``"replace"``
            rewrites its ``metrics.json``/``metrics.csv`` (what ``omniad-lite eval`` does); the run's lock is
            held meanwhile and nothing is written when evaluation fails.
    """
    if isinstance(model_or_run, (str, os.PathLike, LoadedRun)):
        return _evaluate_run(model_or_run, data, protocol=protocol, batch_size=batch_size, device=device,
                             keep_maps=keep_maps, progress=progress, record=record)
    if record is not None:
        raise InputError(f"record={record!r} needs a run directory, not a model; pass the run's folder")
    dataset = data
    if isinstance(data, ExperimentConfig):
        dataset = test_dataset(data, model_or_run.preprocess, progress)
        batch_size = batch_size or data.train.batch_size
        allow_undefined = True if allow_undefined is None else allow_undefined
    if dataset is None or isinstance(dataset, (str, os.PathLike)):
        raise InputError("evaluate(model, data) needs a dataset or an ExperimentConfig as data; a run directory "
                         "brings its own test split")
    result = _evaluate_dataset(model_or_run, dataset, batch_size=batch_size or DEFAULT_BATCH, device=device,
                               protocol=protocol, keep_maps=keep_maps, progress=progress, num_workers=num_workers,
                               streaming=streaming, rounded=rounded, allow_undefined=bool(allow_undefined))
    note = undefined_note(result)
    if note:
        warn(note, MetricWarning)
    return result


def _evaluate_dataset(model, dataset, *, batch_size: int, device, protocol: str, keep_maps: bool, progress: bool,
                      num_workers: int, streaming: bool | None, rounded: bool, allow_undefined: bool) -> EvalResult:
    if len(dataset) == 0:
        raise InputError("evaluate() got an empty dataset; check the test split's root and classes")
    side = dataset[0]["image"].shape[-1]
    if streaming is None:
        streaming = len(dataset) * side * side > EXACT_MAX_PIXELS
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    collector = _Collector(protocol, streaming, allow_undefined, keep_maps)
    for batch, maps, scores in iter_maps(model, loader, device=device, progress=progress, desc="evaluate",
                                         total=len(loader)):
        collector.add(batch, maps, scores)
    per_class = collector.per_class()
    kept = {k: np.concatenate(v) for k, v in collector.kept.items()}
    return EvalResult(table=metrics_table(per_class, protocol=protocol, rounded=rounded), per_class=per_class,
                      per_image=pd.DataFrame(collector.rows, columns=PER_IMAGE_COLUMNS),
                      protocol=protocol, mode="streaming" if streaming else "exact",
                      maps=kept.get("maps"), masks=kept.get("masks"))


def test_dataset(cfg, preprocess, progress: bool = True):
    """The test split described by ``cfg.data``, prepared with the model's ``preprocess``."""
    return dataset_from_config(cfg.data, "test", preprocess, progress=progress)


def _evaluate_run(run_or_loaded, data_root, *, protocol: str, batch_size: int | None, device, keep_maps: bool,
                  progress: bool, record: str | None) -> EvalResult:
    """A saved run on its test split (or ``data_root``'s); ``record`` writes the result into the run."""
    if record not in RECORD_MODES:
        raise InputError(f"record={record!r} is not one of {RECORD_MODES}")
    device = resolve_device(device)
    loaded = run_or_loaded if isinstance(run_or_loaded, LoadedRun) else load_run(run_or_loaded, device=device)
    cfg = loaded.config
    if data_root is not None:
        if not Path(data_root).is_dir():
            raise FileNotFoundError(f"data root {data_root} does not exist")
        cfg = cfg.with_overrides({"data.root": str(data_root)})
    run = loaded.run_dir
    lock = run.lock("eval", fix="wait for it to finish, then evaluate again") if record else None
    try:
        if lock:
            run.remove_temp_files()
        t0 = time.perf_counter()
        if protocol == MVTEC_AD2:  # its own evaluation: thresholds from the validation normals, AU-PRO@0.05, SegF1
            result = evaluate_mvtec_ad2(loaded.model, cfg, device=device, batch_size=batch_size, progress=progress)
        else:
            result = evaluate(loaded.model, cfg, protocol=protocol, batch_size=batch_size, device=device,
                              keep_maps=keep_maps, progress=progress)
        if record:
            result.files = record_evaluation(run, result, cfg, replace=record == "replace",
                                             eval_time_s=time.perf_counter() - t0)
    finally:
        if lock:
            lock.release()
    return result


def write_metrics(run: RunDir, result: EvalResult, extra: dict[str, Any]) -> None:
    """Write ``metrics.csv`` (the per-class table) and ``metrics.json`` (``extra`` + the final evaluation)."""
    run.write_metrics({**extra, "protocol": result.protocol, "final": result.to_dict()},
                      result.table.to_csv(float_format="%.2f"))


def record_evaluation(run: RunDir, result: EvalResult, cfg, *, replace: bool, eval_time_s: float) -> list[Path]:
    """Write a later evaluation of a run: over its metrics (``replace``; the released "best over training"
    record is kept when the protocol is unchanged) or beside them in ``evaluations/``. Returns the paths."""
    previous = run.read_metrics() or {}
    kept = {k: previous[k] for k in ("method", "memory_bank") if k in previous}
    extra = {**kept, "step": previous.get("step"), "eval_time_s": round(eval_time_s, 2)}
    if replace:
        best = previous.get("best_over_training") if previous.get("protocol") == result.protocol else None
        write_metrics(run, result, {"headline": "final", **extra, "train_time_s": previous.get("train_time_s"),
                                    "best_over_training": best})
        return [run / RunDir.METRICS, run / RunDir.METRICS_CSV]
    payload = {**extra, "data_root": cfg.data.root, "protocol": result.protocol, "final": result.to_dict()}
    return list(run.write_evaluation(payload, result.table.to_csv(float_format="%.2f"), result.protocol))


def undefined_note(result: EvalResult) -> str | None:
    """One line saying which metrics are undefined (NaN) and why, or ``None`` when all are defined."""
    parts = []
    rows = result.per_image
    no_mask = rows[(rows["label"] == 1) & ~rows["mask_valid"].astype(bool)] if "mask_valid" in rows else rows[:0]
    if len(no_mask):
        classes = sorted(no_mask["cls_name"].unique())
        parts.append(f"{len(no_mask)} anomalous test image(s) of class(es) {classes} have no mask: pixel metrics "
                     f"use only the images with masks and are undefined (NaN) where no anomalous image has one")
    undefined = [c for c in result.classes if result.table.loc[c].isna().any()]
    image_undefined = [c for c in undefined if pd.isna(result.table.loc[c, "image_auroc"])]
    if image_undefined:
        parts.append(f"image metrics undefined (NaN) for class(es) {image_undefined}: their test split lacks "
                     f"anomalous or normal images; add some to evaluate them")
    elif undefined and not len(no_mask):
        parts.append(f"pixel metrics undefined (NaN) for class(es) {undefined}: no anomalous pixel in their masks")
    return "; ".join(parts) or None


__all__ = ["evaluate", "record_evaluation", "test_dataset", "undefined_note", "write_metrics", "EXACT_MAX_PIXELS",
           "MEAN_ROW"]
