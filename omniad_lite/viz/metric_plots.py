"""Figures of notebook 04 that explain the metrics: ROC next to precision-recall, a worked PRO curve, intervals.

Plotting only; the numbers come from :mod:`omniad_lite.evaluation` and scikit-learn. Ours.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .table_display import SHORT_NAMES


def roc_pr_figure(fpr: np.ndarray, tpr: np.ndarray, recall: np.ndarray, precision: np.ndarray, prevalence: float,
                  point: tuple[float, float, float] | None = None) -> Figure:
    """ROC curve and precision-recall curve of the same scores, with what a random score gives in each.

    Args:
        fpr, tpr: the ROC curve (``sklearn.metrics.roc_curve``).
        recall, precision: the PR curve (``sklearn.metrics.precision_recall_curve``).
        prevalence: the fraction of positives: the precision of a random score.
        point: ``(fpr, recall, precision)`` of one threshold, marked on both curves.
    """
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    ax_roc.plot(fpr, tpr, lw=2)
    ax_roc.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="random score (AUROC 0.5)")
    ax_roc.set(xlabel="false-positive rate (normal pixels flagged)", ylabel="recall (defect pixels found)",
               title="ROC: normal pixels counted as a fraction of themselves")
    ax_pr.plot(recall, precision, lw=2)
    ax_pr.axhline(prevalence, color="0.5", ls="--", lw=1, label=f"random score (AP = {100 * prevalence:.1f} %)")
    ax_pr.set(xlabel="recall (defect pixels found)", ylabel="precision (flagged pixels that are defects)",
              title="precision-recall: normal pixels counted against the defects", ylim=(0, 1.02))
    if point is not None:
        x, r, p = point
        ax_roc.plot([x], [r], "o", color="C3", label=f"one threshold: FPR {100 * x:.1f} %, recall {100 * r:.0f} %")
        ax_pr.plot([r], [p], "o", color="C3", label=f"the same threshold: precision {100 * p:.0f} %")
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left" if ax is ax_pr else "lower right", frameon=False)
    return fig


def pro_example_figure(score_map: np.ndarray, regions: np.ndarray, fpr: np.ndarray, pro: np.ndarray,
                       limit: float) -> Figure:
    """A toy map with its ground-truth regions numbered, and its PRO curve with the integrated part shaded.

    Args:
        score_map: ``(H, W)`` anomaly scores.
        regions: ``(H, W)`` region labels (0: normal), as ``scipy.ndimage.label`` returns them.
        fpr, pro: the PRO curve's points in order of decreasing threshold, starting at (0, 0).
        limit: the FPR up to which the area is taken.
    """
    fig, (ax_map, ax_curve) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained",
                                           gridspec_kw={"width_ratios": [1, 1.4]})
    im = ax_map.imshow(score_map, cmap="viridis")
    ax_map.contour(regions > 0, levels=[0.5], colors="white", linewidths=1.5)
    for k in range(1, int(regions.max()) + 1):
        ys, xs = np.nonzero(regions == k)
        ax_map.text(xs.mean(), ys.mean(), f"region {k}\n{ys.size} px", color="white", ha="center", va="center",
                    fontsize=8)
    ax_map.set_title("scores; white: the two defect regions", fontsize=10)
    ax_map.set_axis_off()
    fig.colorbar(im, ax=ax_map, shrink=0.8, label="anomaly score")
    ax_curve.plot(fpr, pro, marker="o", ms=3)
    inside = fpr <= limit
    ax_curve.fill_between(fpr[inside], pro[inside], alpha=0.25, label=f"area up to FPR {limit:g}")
    ax_curve.axvline(limit, color="0.4", ls=":", lw=1)
    ax_curve.set(xlabel="false-positive rate on normal pixels", ylabel="PRO (mean overlap per region)",
                 title="PRO curve (one point per threshold)", ylim=(0, 1.05))
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=8, frameon=False)
    return fig


def interval_figure(cis: pd.DataFrame, metric: str) -> Figure:
    """Per class: the point estimate and its bootstrap interval (rows of ``image_metric_cis`` for ``metric``)."""
    rows = cis.xs(metric, level="metric")
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(rows) + 1.2), layout="constrained")
    y = np.arange(len(rows))[::-1]
    ax.errorbar(rows["estimate"], y, xerr=[rows["estimate"] - rows["low"], rows["high"] - rows["estimate"]],
                fmt="o", capsize=4)
    for yi, (_, r) in zip(y, rows.iterrows()):
        ax.annotate(f"{r.estimate:.1f} [{r.low:.1f}, {r.high:.1f}]", (r.high, yi), xytext=(6, -3),
                    textcoords="offset points", fontsize=8)
    ax.set_yticks(y, rows.index)
    low = float(rows["low"].min())
    ax.set_xlim(low - 0.1 * (100 - low) - 0.5, 100 + 0.45 * (100 - low) + 2)  # room for the labels
    ax.set_xticks([t for t in ax.get_xticks() if low - 0.1 * (100 - low) - 0.5 <= t <= 100])  # no metric above 100
    name = SHORT_NAMES.get(metric, metric)
    ax.set(xlabel=f"{name} (×100)", title=f"{name} per class with its 95 % bootstrap interval")
    ax.grid(alpha=0.3, axis="x")
    return fig
