"""The kit's result objects: what ``predict``, ``evaluate`` and ``train`` return.

- :class:`Prediction` — one image scored by a trained model (``predict``).
- :class:`EvalResult` — a test split evaluated: the per-class table, per-image scores, optionally the maps
  (``evaluate``).
- :class:`TrainResult` — a finished (or paused) training run (``train``).

Plain data (NumPy, pandas): no torch, so results can be inspected and saved anywhere.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MEAN_ROW = "mean"


def plain(value: Any) -> float | None:
    """A JSON-safe number: NaN (a metric a class cannot define) becomes ``None``."""
    return None if value is None or pd.isna(value) else float(value)


@dataclass
class Prediction:
    """One image scored by a trained model.

    Attributes:
        path: the image file (``None`` for in-memory images).
        cls_name: the class whose threshold decided (``"all"``: the pooled threshold, class unknown; ``None``:
            no thresholds).
        score: image anomaly score (the maximum of the map at the network input size).
        anomaly_map: ``(H, W)`` float32 anomaly map, at the image's original size by default (``predict``'s
            ``original_size=False``, and tensor inputs: at the network size).
        threshold: the image-score threshold used for the decision (``None``: no threshold known).
        normalized_score: ``score`` rescaled so that 0 is a typical normal image and 1 the threshold.
        is_anomalous: the decision, ``score >= threshold`` (``None`` without a threshold).
        error: why the image could not be scored (then the other fields are empty).
        normal_level: the class's typical normal score (the 0 of the normalised scale).
        image: the original RGB image ``(H, W, 3)`` uint8 (only with ``keep_image=True``; for overlays).
    """

    path: str | None
    score: float | None
    anomaly_map: np.ndarray | None = field(default=None, repr=False)
    cls_name: str | None = None
    threshold: float | None = None
    normalized_score: float | None = None
    is_anomalous: bool | None = None
    error: str | None = None
    normal_level: float | None = None
    image: np.ndarray | None = field(default=None, repr=False)

    @property
    def decision(self) -> str:
        """``"anomalous"``, ``"normal"``, ``"error"`` or ``""`` (no threshold)."""
        if self.error is not None:
            return "error"
        return "" if self.is_anomalous is None else ("anomalous" if self.is_anomalous else "normal")

    @property
    def normalized_map(self) -> np.ndarray | None:
        """The map on the normalised scale (0 = typical normal, 1 = threshold), or ``None``."""
        if self.anomaly_map is None or self.threshold is None or self.normal_level is None:
            return None
        return (self.anomaly_map - self.normal_level) / (self.threshold - self.normal_level)

    def to_row(self) -> dict[str, Any]:
        """The scalar fields, as one row of a table (``scores.csv``)."""
        return {"path": self.path, "class": self.cls_name, "score": self.score,
                "normalized_score": self.normalized_score, "threshold": self.threshold,
                "decision": self.decision, "is_anomalous": self.is_anomalous, "error": self.error}


@dataclass
class EvalResult:
    """A test split evaluated with one protocol.

    Attributes:
        table: per-class metrics table in percent (rows: classes then ``mean``; see
            :func:`omniad_lite.evaluation.metric_tables.metrics_table`); ``table.attrs["protocol"]`` names the protocol.
        per_class: unrounded fractions, ``{class: {metric: value}}``.
        per_image: one row per test image: ``path, cls_name, label, score``.
        protocol: ``"kit"`` or ``"released"``.
        mode: ``"exact"`` or ``"streaming"``.
        maps: ``(N, S, S)`` float16 anomaly maps in dataset order (only with ``keep_maps=True``).
        masks: ``(N, S, S)`` uint8 ground-truth masks (only with ``keep_maps=True``).
        files: the files an evaluation of a run directory wrote (``evaluate(run_dir, record=...)``).
    """

    table: pd.DataFrame
    per_class: dict[str, dict[str, float]]
    per_image: pd.DataFrame
    protocol: str
    mode: str
    maps: np.ndarray | None = field(default=None, repr=False)
    masks: np.ndarray | None = field(default=None, repr=False)
    files: list = field(default_factory=list, repr=False)

    @property
    def mean(self) -> dict[str, float | None]:
        """The class-mean row of :attr:`table` (percent; ``None`` where undefined)."""
        return {k: plain(v) for k, v in self.table.loc[MEAN_ROW].items()}

    @property
    def classes(self) -> list[str]:
        return [c for c in self.table.index if c != MEAN_ROW]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: protocol, mode, the class mean and every class's row (percent; NaN → ``None``)."""
        return {"protocol": self.protocol, "mode": self.mode, "num_images": len(self.per_image),
                "mean": self.mean,
                "per_class": {str(c): {k: plain(v) for k, v in row.items()}
                              for c, row in self.table.iterrows() if c != MEAN_ROW}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def _repr_html_(self) -> str:
        return self.table._repr_html_()


@dataclass
class TrainResult:
    """A training run.

    Attributes:
        run_dir: the run directory (:class:`omniad_lite.run.RunDir`).
        steps: optimiser steps done.
        total_steps: steps of the whole run (``steps < total_steps`` when paused by ``max_steps``).
        train_time_s: training wall time of this call, in seconds.
        evaluation: the final model's :class:`EvalResult` (``None`` when paused or in a non-main process).
    """

    run_dir: Any
    steps: int
    total_steps: int
    train_time_s: float
    evaluation: EvalResult | None = None

    @property
    def finished(self) -> bool:
        return self.steps >= self.total_steps

