"""Evaluate a model on a test split: per-class metrics under an explicit protocol, as an :class:`EvalResult`.

Reimplements the test loop of the released code (github easyoo/Omni-AD ``trainer``, ADer's ``evaluator``):
run the test split, build each image's anomaly map (:func:`~omniad_lite.evaluation.scoring.anomaly_map`),
image score = max, metrics per class, then the class mean. Where we differ:

- the protocol is explicit (``"kit"``: exact definitions, or ``"released"``) and recorded in the result;
- the final model is evaluated once (no best-over-training selection; training records that separately);
- memory is bounded: test sets up to ``EXACT_MAX_PIXELS`` map pixels are scored exactly, larger ones
  (Real-IAD) stream through one :class:`~omniad_lite.evaluation.stream.MetricAccumulator` per class;
- evaluation is deterministic and restores the model's mode (:mod:`.inference`).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from ..progress import print_note
from ..results import MEAN_ROW, EvalResult
from .inference import iter_maps
from .metrics import compute_metrics
from .stream import MetricAccumulator
from .tables import metrics_table

PER_IMAGE_COLUMNS = ["path", "cls_name", "label", "score", "mask_valid"]
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
                raise ValueError(f"class {cls!r}: {e}") from None
        return out


def evaluate(model, dataset, *, batch_size: int = 16, device="auto", protocol: str = "kit",
             keep_maps: bool = False, progress: bool = True, num_workers: int = 0, streaming: bool | None = None,
             rounded: bool = True, allow_undefined: bool = False) -> EvalResult:
    """Run ``dataset`` (a test split) through ``model`` and compute the per-class metrics.

    Args:
        model: ``model(images) -> (encoder_features, reconstructions)``; moved to ``device`` (in place).
        dataset: items ``{"image" (3, S, S), "mask" (1, S, S), "label", "cls_name", "path"}`` and optionally
            ``"mask_valid"`` (False: an anomalous image without a mask, left out of the pixel metrics), e.g.
            an :class:`~omniad_lite.data.AnomalyDataset`.
        batch_size: images per forward pass.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda:0"``, ...
        protocol: ``"kit"`` or ``"released"`` (see :mod:`omniad_lite.evaluation.metrics`).
        keep_maps: also keep every map (float16) and mask in the result, in dataset order.
        progress: show a progress bar.
        num_workers: DataLoader workers.
        streaming: ``True`` histogram accumulators (bounded memory, ~1e-4 accurate), ``False`` exact,
            ``None`` exact when the split has at most ``EXACT_MAX_PIXELS`` map pixels.
        rounded: round the table to one decimal like the papers (``per_class`` keeps the fractions).
        allow_undefined: NaN instead of an error for a class whose metrics are undefined (e.g. no anomalies).
    """
    if len(dataset) == 0:
        raise ValueError("evaluate() got an empty dataset; check the test split's root and classes")
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
    from ..data import dataset_from_config

    return dataset_from_config(cfg.data, "test", preprocess, progress=progress)


def evaluate_config(model, cfg, *, protocol: str = "kit", batch_size: int | None = None, device="auto",
                    progress: bool = True, keep_maps: bool = False) -> EvalResult:
    """Evaluate ``model`` on the test split of ``cfg`` (what training and ``omniad-lite eval`` do).

    A class whose test split cannot define a metric (custom data without anomalies, anomalous images without
    masks) gets NaN for it and one printed note, rather than failing at the end of a long run.
    """
    dataset = test_dataset(cfg, model.preprocess, progress)
    result = evaluate(model, dataset, batch_size=batch_size or cfg.train.batch_size, device=device, protocol=protocol,
                      progress=progress, keep_maps=keep_maps, allow_undefined=True)
    note = undefined_note(result)
    if note:
        print_note(note)
    return result


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


__all__ = ["evaluate", "evaluate_config", "test_dataset", "undefined_note", "EXACT_MAX_PIXELS", "MEAN_ROW"]
