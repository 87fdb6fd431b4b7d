"""Curves and bars: training loss, image ROC, PRO curves, per-class metric bars.

The PRO curve follows the evaluation protocol (docs/method.md): regions are 8-connected components of the
ground truth, PRO at a threshold is the mean overlap over all regions of all images, plotted against the
false-positive rate on normal pixels up to FPR 0.3. :func:`pro_curve` takes its points from
:func:`omniad_lite.evaluation.curve_metrics.pro_fpr_at`, the same regions and weights as the AU-PRO metric (the
released code, github easyoo/Omni-AD ``util/metric.py``, has no plotting).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter
from sklearn.metrics import roc_auc_score, roc_curve

from ..errors import InputError
from ..evaluation.curve_metrics import AUPRO_FPR_LIMIT, pro_fpr_at
from .overlays import to_numpy

PRO_MAX_FPR = AUPRO_FPR_LIMIT  # AU-PRO is integrated up to this false-positive rate
PRO_NUM_THRESHOLDS = 200  # thresholds sampled between the min and max of the maps
DEFAULT_BAR_METRICS = ("image_auroc", "pixel_auroc", "pixel_aupro")
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy 2 renamed trapz
LOSS_RAW_ALPHA = 0.35  # the logged loss values, under their moving average
SMOOTHING_FRACTION = 10  # moving-average span = rows / this
LEGEND_OUTSIDE = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8, frameon=False)
LEGEND_ABOVE = dict(loc="lower left", bbox_to_anchor=(0.0, 1.02), borderaxespad=0.0, fontsize=8, frameon=False,
                    ncols=3)


def loss_curve(history, *, ax=None, logy: bool = True) -> Figure:
    """Every ``*loss*`` column of a training history against the step: the logged values and a smoothed line.

    The logged values are drawn thin and light (they are noisy: each is a mean over a few steps), the
    exponential moving average (span :func:`smoothing_span`) on top; the learning rate, when the history
    has an ``lr`` column, on a second axis, so its drop is visible. The legend sits above the axes.

    Args:
        history: a ``history.csv`` path (as the training engine writes it) or a DataFrame.
        ax: axes to draw into (default: a new figure); pass the same axes to redraw a live curve.
        logy: logarithmic y axis.
    """
    df = pd.read_csv(history) if isinstance(history, (str, Path)) else history
    x_col = next((c for c in ("step", "iteration", "iter", "epoch") if c in df.columns), None)
    y_cols = [c for c in df.columns if "loss" in c]
    if x_col is None or not y_cols:
        raise InputError(f"history needs a step column and a loss column, got columns {list(df.columns)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3))
    fig = ax.figure
    for extra in [a for a in fig.axes if a is not ax and a.get_shared_x_axes().joined(a, ax)]:
        extra.remove()  # the lr axis of a previous draw
    ax.clear()
    x = df[x_col].to_numpy()
    span = smoothing_span(len(df))
    for c in y_cols:
        (raw,) = ax.plot(x, df[c].to_numpy(), lw=0.8, alpha=LOSS_RAW_ALPHA, label=f"{c} (logged)")
        ax.plot(x, df[c].ewm(span=span).mean().to_numpy(), lw=2, color=raw.get_color(),
                label=f"{c} (moving average, {span} rows)")
    if logy and (df[y_cols].to_numpy() > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel(x_col)
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if "lr" in df.columns:
        lr_ax = ax.twinx()
        handles += lr_ax.plot(x, df["lr"].to_numpy(), color="0.5", ls="--", lw=1, label="learning rate")
        labels.append("learning rate")
        lr_ax.set_ylabel("learning rate", color="0.4")
        lr_ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))  # no offset text to collide with
    ax.legend(handles, labels, **LEGEND_ABOVE)  # the right side holds the lr axis
    return fig


def smoothing_span(num_rows: int) -> int:
    """Span of the loss curve's moving average: about a tenth of the rows, at least 2."""
    return max(2, num_rows // SMOOTHING_FRACTION)


def roc_curves(per_class: Mapping[str, tuple], *, ax=None) -> Figure:
    """Image-level ROC curves, one per class, with the AUROC in the legend.

    Args:
        per_class: ``{class: (image_scores (N,), image_labels (N,))}``.
        ax: axes to draw into (default: a new figure).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for cls, (scores, labels) in per_class.items():
        scores, labels = to_numpy(scores).ravel(), to_numpy(labels).ravel()
        if len(np.unique(labels)) < 2:
            raise InputError(f"class {cls!r} needs both normal and anomalous images for a ROC curve")
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{cls} ({100 * roc_auc_score(labels, scores):.1f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="image ROC (AUROC ×100)")
    ax.legend(**LEGEND_OUTSIDE)
    return ax.figure


def pro_curve(maps, masks, *, max_fpr: float = PRO_MAX_FPR, num_thresholds: int = PRO_NUM_THRESHOLDS):
    """Per-region-overlap curve points up to ``max_fpr``.

    Args:
        maps: ``(N, H, W)`` anomaly maps.
        masks: ``(N, H, W)`` ground truth in {0, 1}; regions are its 8-connected components.
        max_fpr: keep thresholds whose false-positive rate on normal pixels is at most this.
        num_thresholds: thresholds evenly spaced between the maps' min and max.

    Returns:
        ``(fpr, pro)``: arrays sorted by increasing FPR, starting at (0, 0) and ending at ``max_fpr``
        (the last point interpolated linearly), so ``trapezoid(pro, fpr) / max_fpr`` is the AU-PRO.
    """

    maps, masks = to_numpy(maps).astype(np.float64), to_numpy(masks) > 0.5
    if maps.shape != masks.shape or maps.ndim != 3:
        raise InputError(f"maps {maps.shape} and masks {masks.shape} must both be (N, H, W)")
    if not masks.any() or masks.all():
        raise InputError("pro_curve needs ground truth with both anomalous and normal pixels")
    thresholds = np.linspace(maps.max(), maps.min(), num_thresholds)  # high → low: FPR increases
    fprs, pros = pro_fpr_at(maps, masks, thresholds)  # same regions and weights as the AU-PRO metric
    fpr, pro = [0.0], [0.0]
    for f, p in zip(fprs.tolist(), pros.tolist()):
        if f > max_fpr:  # close the curve at max_fpr, interpolating linearly from the last point
            pro.append(pro[-1] + (p - pro[-1]) * (max_fpr - fpr[-1]) / (f - fpr[-1]))
            fpr.append(max_fpr)
            break
        fpr.append(f)
        pro.append(p)
    return np.asarray(fpr), np.asarray(pro)


def pro_curves(per_class: Mapping[str, tuple], *, ax=None, max_fpr: float = PRO_MAX_FPR) -> Figure:
    """PRO curves, one per class, with the normalised area (AU-PRO up to ``max_fpr``, ×100) in the legend.

    Args:
        per_class: ``{class: (maps (N, H, W), masks (N, H, W))}``.
        ax: axes to draw into (default: a new figure).
        max_fpr: integration limit of the AU-PRO.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for cls, (maps, masks) in per_class.items():
        fpr, pro = pro_curve(maps, masks, max_fpr=max_fpr)
        area = _trapezoid(pro, fpr) / max_fpr
        ax.plot(fpr, pro, label=f"{cls} ({100 * area:.1f})")
    ax.set(xlim=(0, max_fpr), ylim=(0, 1.02), xlabel="false-positive rate (normal pixels)",
           ylabel="per-region overlap", title=f"PRO curve (AU-PRO@{max_fpr} ×100, sampled)")
    ax.legend(**LEGEND_OUTSIDE)
    return ax.figure


def metric_bars(table: pd.DataFrame, metrics: Sequence[str] = DEFAULT_BAR_METRICS, *, ax=None) -> Figure:
    """Grouped bar chart: one group per class (rows of ``table``), one bar per metric.

    Args:
        table: per-class metrics table (rows = classes, columns = metric names), e.g. from
            :func:`omniad_lite.metrics.metrics_table`.
        metrics: the columns to draw.
        ax: axes to draw into (default: a new figure).
    """
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise InputError(f"metrics {missing} are not columns of the table; columns: {list(table.columns)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(table) * len(metrics) / 2), 3.2))
    x = np.arange(len(table))
    width = 0.8 / len(metrics)
    for j, m in enumerate(metrics):
        ax.bar(x + (j - (len(metrics) - 1) / 2) * width, table[m].to_numpy(dtype=float), width, label=m)
    ax.set_xticks(x, [str(i) for i in table.index], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("score")
    ax.legend(**LEGEND_OUTSIDE)
    ax.grid(axis="y", alpha=0.3)
    return ax.figure
