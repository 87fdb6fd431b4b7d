"""Protocol ``"released"``: the released evaluation's pixel F1-max and AU-PRO formulas, replayed exactly.

Facts from ``util/metric.py`` (``Evaluator.run``, ``cal_pro_score``) and ``trainer/omniad_trainer.py`` of github
easyoo/Omni-AD at d85c5f4 (the ADer evaluator; its MVTec/VisA/Real-IAD configs set ``max_step_aupro=100``).
The code here is ours; it works on sorted scores and counts instead of a loop over binarised maps, which gives
the same numbers (``tests/test_metrics.py`` checks it against a literal per-threshold loop).

* **pixel F1-max** (``mF1_max_px``): the class's maps are min–max normalised, ``(m - lo) / (hi - lo)``; for each
  of the 21 scores ``np.arange(0, 1 + 1e-3, 0.05)`` a pixel is positive when its normalised value is
  **strictly greater** than the score; ``P = TP / (predicted + 1e-8)``, ``R = TP / (anomalous + 1e-8)``,
  ``F1 = 2PR / (P + R + 1e-8)``; the result is the largest F1. All-equal maps normalise to NaN there, so
  nothing is predicted and F1 is 0.
* **AU-PRO** (``mAUPRO_px``): thresholds ``np.arange(lo, hi, (hi - lo) / 100)`` (float64; the rounding of
  ``arange`` gives 100 or 101 of them), a pixel positive when ``score > th``; PRO = mean over all regions
  (8-connected) of the detected fraction, FPR over all normal pixels; keep the thresholds with FPR < 0.3,
  min–max rescale those FPRs to [0, 1] and take ``sklearn.metrics.auc`` of (FPR, PRO) *in threshold order*.
  FPR never rises as the threshold rises, so ``auc`` integrates the points as they come and flips the sign.
  Where several thresholds share an FPR (e.g. FPR 0 above the highest normal pixel while PRO still falls)
  the trapezoids between them have zero width: the segment towards higher FPR meets the group at the PRO of
  its lowest threshold (the group's highest PRO), the segment towards lower FPR at the PRO of its highest
  threshold. A stable ascending sort of the FPRs would swap the two.
  NaN when fewer than two thresholds are kept or their FPRs are all equal (the released code divides 0 by 0).
* **image labels**: ``gt_sp = gt_px.max(axis=(1, 2))`` — an image is anomalous when its (resized, binarised)
  mask has an anomalous pixel, whatever its folder says.
"""
from __future__ import annotations

import numpy as np

RELEASED_PRO_STEPS = 100  # configs/omniad/*.py: Evaluator(max_step_aupro=100) (cflow-ad used 200)
RELEASED_FPR_LIMIT = 0.3  # cal_pro_score(expect_fpr=0.3)
RELEASED_F1_SCORES = np.arange(0.0, 1.0 + 1e-3, 0.05)  # mF1_max_px: score_l 0, score_h 1, step 0.05 (21 scores)
RELEASED_EPS = 1e-8  # Evaluator.eps


def pro_thresholds(lo: float, hi: float) -> np.ndarray:
    """The AU-PRO thresholds ``np.arange(lo, hi, (hi - lo) / 100)`` in float64; empty when ``hi <= lo``."""
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        return np.empty(0)
    return np.arange(lo, hi, (hi - lo) / RELEASED_PRO_STEPS)


def pro_area(fpr: np.ndarray, pro: np.ndarray) -> float:
    """Area of the kept, rescaled PRO curve, integrated in threshold order (FPR non-increasing).

    Args:
        fpr: FPR at each threshold, thresholds ascending.
        pro: PRO at each threshold.
    """
    fpr, pro = np.asarray(fpr, np.float64), np.asarray(pro, np.float64)
    keep = fpr < RELEASED_FPR_LIMIT
    f, p = fpr[keep], pro[keep]
    if f.size < 2 or f.max() == f.min():
        return float("nan")
    f = (f - f.min()) / (f.max() - f.min())
    return float(-np.trapezoid(p, f))  # sklearn.metrics.auc: direction -1 for a non-increasing x


def normalise(sorted_scores: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``(s - lo) / (hi - lo)`` in float64 (order kept: the map is normalised as the released code does)."""
    return (np.asarray(sorted_scores, np.float64) - float(lo)) / (float(hi) - float(lo))


def f1max_from_counts(tp: np.ndarray, predicted: np.ndarray, n_pos: int) -> float:
    """Largest ``2PR / (P + R + eps)`` with ``P = TP / (predicted + eps)``, ``R = TP / (n_pos + eps)``."""
    tp, predicted = np.asarray(tp, np.float64), np.asarray(predicted, np.float64)
    precision = tp / (predicted + RELEASED_EPS)
    recall = tp / (n_pos + RELEASED_EPS)
    return float(np.max(2 * precision * recall / (precision + recall + RELEASED_EPS)))


def f1max(pos_sorted: np.ndarray, neg_sorted: np.ndarray, lo: float, hi: float) -> float:
    """Released pixel F1-max from ascending anomalous and normal scores and the class's map range."""
    if not float(hi) > float(lo):
        return 0.0  # NaN normalised map: no pixel is predicted positive
    ge = np.searchsorted(normalise(pos_sorted, lo, hi), RELEASED_F1_SCORES, "right")
    tp = pos_sorted.size - ge  # anomalous pixels with normalised score > s
    fp = neg_sorted.size - np.searchsorted(normalise(neg_sorted, lo, hi), RELEASED_F1_SCORES, "right")
    return f1max_from_counts(tp, tp + fp, pos_sorted.size)


__all__ = ["RELEASED_PRO_STEPS", "RELEASED_FPR_LIMIT", "RELEASED_F1_SCORES", "RELEASED_EPS", "pro_thresholds",
           "pro_area", "normalise", "f1max_from_counts", "f1max"]
