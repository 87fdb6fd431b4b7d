"""Confidence intervals by a bootstrap over test images: how far a per-class number could move.

A demo class has 10 normal and 15 anomalous test images, so its image AUROC can only take the values
k / 150 and one image more or less changes it by several points. The bootstrap (Efron, 1979; the percentile
interval of Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993) redraws the test set with replacement
many times, recomputes the metric each time, and reports the middle ``level`` share of those values.

- :func:`bootstrap_ci` — any statistic of per-image arrays; optionally *stratified* (normal and anomalous
  images redrawn separately, so every redraw keeps both kinds and AUROC stays defined);
- :func:`image_metric_cis` — the per-class image metrics of an evaluation with their intervals.

The released code (github easyoo/Omni-AD) reports point values only; this is ours. ``scipy.stats.bootstrap``
computes the same unstratified percentile interval (``tests/test_bootstrap.py`` compares the two).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .metric_tables import TABLE_SCALE
from .metrics import IMAGE_METRICS, image_metrics

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class BootstrapCI:
    """A statistic on the full sample and its percentile interval.

    Attributes:
        estimate: the statistic on the original arrays.
        low, high: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled statistics.
        level: the interval's nominal coverage (0.95).
        samples: the statistic on each redraw, ``(n_resamples,)``.
    """

    estimate: float
    low: float
    high: float
    level: float
    samples: np.ndarray


def resample_indices(n: int, n_resamples: int, rng: np.random.Generator,
                     strata: np.ndarray | None = None) -> np.ndarray:
    """``(n_resamples, n)`` indices drawn with replacement; within each stratum when ``strata`` is given."""
    if strata is None:
        return rng.integers(0, n, size=(n_resamples, n))
    strata = np.asarray(strata)
    if strata.shape != (n,):
        raise ValueError(f"strata has shape {strata.shape}; expected one label per sample, ({n},)")
    out = np.empty((n_resamples, n), dtype=np.int64)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)  # the positions of this stratum keep its members only
        out[:, members] = members[rng.integers(0, members.size, size=(n_resamples, members.size))]
    return out


def bootstrap_ci(statistic: Callable[..., float], *arrays, strata=None, n_resamples: int = DEFAULT_RESAMPLES,
                 level: float = DEFAULT_LEVEL, seed: int = 0) -> BootstrapCI:
    """Percentile bootstrap interval of ``statistic(*arrays)`` over the samples (the arrays' first axis).

    Args:
        statistic: called as ``statistic(*resampled_arrays)``; returns a number.
        *arrays: per-sample arrays of equal length (e.g. image scores and labels).
        strata: optional per-sample labels; each redraw keeps every stratum's size (stratified bootstrap).
        n_resamples: number of redraws.
        level: coverage of the interval, in (0, 1).
        seed: seed of the NumPy generator (same seed, same interval).

    Raises:
        ValueError: no arrays, arrays of different lengths, or ``level`` outside (0, 1).
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one per-sample array")
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays) or n == 0:
        raise ValueError(f"bootstrap_ci needs non-empty arrays of one length, got {[len(a) for a in arrays]}")
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be in (0, 1), e.g. 0.95")
    rng = np.random.default_rng(seed)
    indices = resample_indices(n, n_resamples, rng, strata)  # (R, n)
    samples = np.array([statistic(*(a[idx] for a in arrays)) for idx in indices], dtype=np.float64)
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return BootstrapCI(float(statistic(*arrays)), float(low), float(high), level, samples)


def image_metric_cis(per_image: pd.DataFrame, metrics=IMAGE_METRICS, *, n_resamples: int = DEFAULT_RESAMPLES,
                     level: float = DEFAULT_LEVEL, seed: int = 0) -> pd.DataFrame:
    """Per-class image metrics (×100) with stratified bootstrap intervals over the class's test images.

    Args:
        per_image: an evaluation's per-image table (``cls_name``, ``label``, ``score`` columns).
        metrics: names from ``image_auroc``, ``image_ap``, ``image_f1max``.

    Returns:
        One row per class and metric: ``estimate``, ``low``, ``high`` (×100) and the image counts.
    """
    rows = []
    for cls, group in per_image.groupby("cls_name", sort=True):
        scores, labels = group["score"].to_numpy(np.float64), group["label"].to_numpy().astype(bool)
        for metric in metrics:
            def stat(s, y, metric=metric):
                return image_metrics(s, y)[metric] * TABLE_SCALE
            ci = bootstrap_ci(stat, scores, labels, strata=labels, n_resamples=n_resamples, level=level, seed=seed)
            rows.append({"class": cls, "metric": metric, "estimate": ci.estimate, "low": ci.low, "high": ci.high,
                         "normal": int((~labels).sum()), "anomalous": int(labels.sum())})
    return pd.DataFrame(rows).set_index(["class", "metric"])
