"""Exact curve metrics from sorted scores: AUROC, AP, F1-max and AU-PRO without a loop over thresholds.

The machinery behind :mod:`omniad_lite.evaluation.metrics` (definitions and protocols are in that module's
docstring). Normal-pixel scores are sorted once, anomalous ones (few) arg-sorted with their region weights
``1 / |region|``; every count above a threshold is then a ``searchsorted`` and every PRO a prefix sum.
:class:`~omniad_lite.evaluation.stream.MetricAccumulator` reuses the same functions on histogram bins.
NumPy and SciPy only.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import released

AUPRO_FPR_LIMIT = 0.3  # integrate the PRO curve up to this FPR, then divide by it
CONNECTIVITY_8 = np.ones((3, 3), dtype=bool)  # 8-connected ground-truth regions


def _distinct(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index of each run of equal values in a sorted array, and the run lengths."""
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    return starts, np.diff(np.r_[starts, sorted_values.size])


def _levels(pos_sorted: np.ndarray, neg_sorted: np.ndarray):
    """Distinct positive score levels (ascending): start index, count, and negatives below / tied."""
    starts, counts = _distinct(pos_sorted)
    values = pos_sorted[starts]
    neg_lt = np.searchsorted(neg_sorted, values, "left")  # negatives strictly below each level
    neg_eq = np.searchsorted(neg_sorted, values, "right") - neg_lt  # negatives tied with it
    return starts, counts, neg_lt, neg_eq


def rank_metrics(pos_sorted: np.ndarray, neg_sorted: np.ndarray) -> tuple[float, float, float]:
    """Exact AUROC, AP and F1-max from ascending positive and negative scores (sklearn's tie rules)."""
    starts, counts, neg_lt, neg_eq = _levels(pos_sorted, neg_sorted)
    return rank_metrics_from_counts(counts, pos_sorted.size - starts, neg_lt, neg_eq, neg_sorted.size)


def rank_metrics_from_counts(counts, tp, neg_lt, neg_eq, n_neg: int) -> tuple[float, float, float]:
    """AUROC, AP, F1-max from the distinct positive score levels (ascending).

    Args:
        counts: positives at each level.
        tp: positives at or above each level.
        neg_lt: negatives strictly below each level.
        neg_eq: negatives tied with each level (counted ½ in AUROC, as the ROC trapezoid does).
        n_neg: number of negatives.
    """
    n_pos = float(np.sum(counts))
    auroc = float(np.sum(counts * (neg_lt + 0.5 * neg_eq))) / (n_pos * n_neg)
    tp = np.asarray(tp, dtype=np.float64)
    fp = (n_neg - np.asarray(neg_lt)).astype(np.float64)  # negatives >= level
    # AP and F1 only change where recall changes, i.e. at the positive levels (sklearn's sums agree).
    ap = float(np.sum(counts / n_pos * tp / (tp + fp)))
    f1max = float(np.max(2 * tp / (n_pos + tp + fp)))
    return auroc, ap, f1max


def aupro_from_levels(pro_gain, fpr_above, fpr_at_least, limit: float = AUPRO_FPR_LIMIT) -> float:
    """Area under the PRO curve up to FPR ``limit``, divided by ``limit``, summed level by level.

    The PRO curve (threshold decreasing) rises only at anomalous score levels. Level ``u`` adds ``pro_gain[u]``
    while FPR moves from ``fpr_above[u]`` (normal pixels ``> u``) to ``fpr_at_least[u]`` (``>= u``): a vertical
    step without tied normal pixels, a diagonal (the trapezoid between the two curve points) with them. Its
    share of the area left of ``limit`` is ``gain × ∫₀^limit clip((x - x0) / (x1 - x0), 0, 1) dx``, so summing
    over levels gives exactly the trapezoid integral of the curve through all distinct thresholds, with the
    curve interpolated linearly at ``limit`` — no loop over the (millions of) normal-pixel thresholds.
    """
    x0, x1 = np.asarray(fpr_above, np.float64), np.asarray(fpr_at_least, np.float64)
    width = x1 - x0
    after = np.clip(limit - x1, 0.0, None)  # full-gain part right of the segment
    inside = np.clip(np.minimum(limit, x1) - x0, 0.0, None)  # part of the segment left of the limit
    ramp = np.divide(inside ** 2, 2 * width, out=np.zeros_like(width), where=width > 0)
    return float(np.sum(np.asarray(pro_gain) * (after + ramp)) / limit)


class PixelSets:
    """Sorted normal scores, sorted anomalous scores with PRO weights, for one class's maps."""

    def __init__(self, maps: np.ndarray, masks: np.ndarray):
        structure = np.zeros((3, 3, 3), dtype=bool)
        structure[1] = CONNECTIVITY_8  # 8-connected within an image, never across images
        regions, self.num_regions = ndimage.label(masks, structure=structure)  # (N, H, W) int
        self.neg = np.sort(maps[~masks], kind="quicksort")  # (num normal pixels,)
        pos = maps[masks]
        region_of_pos = regions[masks]
        sizes = np.bincount(region_of_pos, minlength=self.num_regions + 1)
        order = np.argsort(pos, kind="stable")
        self.pos = pos[order]  # (num anomalous pixels,)
        weights = 1.0 / sizes[region_of_pos[order]]  # each region sums to 1
        self.prefix = np.r_[0.0, np.cumsum(weights)]  # prefix[i] = weight of the i lowest anomalous pixels
        self.lo = float(min(self.neg[0] if self.neg.size else np.inf, self.pos[0] if self.pos.size else np.inf))
        self.hi = float(max(self.neg[-1] if self.neg.size else -np.inf, self.pos[-1] if self.pos.size else -np.inf))

    def pro_at_least(self, t: np.ndarray, side: str) -> np.ndarray:
        """PRO for thresholds ``t``: ``side='left'`` counts scores ``>= t``, ``'right'`` counts ``> t``."""
        return (self.prefix[-1] - self.prefix[np.searchsorted(self.pos, t, side)]) / self.num_regions

    def kit_aupro(self, limit: float = AUPRO_FPR_LIMIT) -> float:
        """Exact AU-PRO up to FPR ``limit``, divided by ``limit`` (pixel positive when ``score >= t``)."""
        starts, counts, neg_lt, neg_eq = _levels(self.pos, self.neg)
        gain = (self.prefix[starts + counts] - self.prefix[starts]) / self.num_regions  # PRO added per level
        n_neg = self.neg.size
        return aupro_from_levels(gain, (n_neg - neg_lt - neg_eq) / n_neg, (n_neg - neg_lt) / n_neg, limit)

    def released_aupro(self) -> float:
        """AU-PRO of protocol ``"released"`` (:mod:`.released`): pixel positive when ``score > th``."""
        ths = released.pro_thresholds(self.lo, self.hi)
        fpr = (self.neg.size - np.searchsorted(self.neg, ths, "right")) / self.neg.size
        return released.pro_area(fpr, self.pro_at_least(ths, "right"))

    def released_f1max(self) -> float:
        """Pixel F1-max of protocol ``"released"`` (:mod:`.released`)."""
        return released.f1max(self.pos, self.neg, self.lo, self.hi)


def pro_fpr_at(maps: np.ndarray, masks: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and PRO at each threshold (a pixel counts when its score is ``>= t``), for plotting PRO curves.

    Same regions and weights as the kit AU-PRO (8-connected components, PRO = mean overlap over all regions).

    Args:
        maps: ``(N, H, W)`` anomaly maps.
        masks: ``(N, H, W)`` boolean ground truth with both normal and anomalous pixels.
        thresholds: the thresholds, any order.

    Returns:
        ``(fpr, pro)``, each shaped like ``thresholds``.
    """
    sets = PixelSets(maps, masks)
    t = np.asarray(thresholds, dtype=np.float64)
    fpr = (sets.neg.size - np.searchsorted(sets.neg, t, "left")) / sets.neg.size
    return fpr, sets.pro_at_least(t, "left")
