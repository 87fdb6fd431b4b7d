"""Figures for the notebooks: heatmap overlays, loss curves, ROC/PRO curves, feature PCA, token attention.

Every function takes plain arrays (NumPy or torch; detached and moved to CPU here), draws with matplotlib
and returns the :class:`~matplotlib.figure.Figure` so that notebooks show it and tests inspect it. No
function computes a model output: the library's scoring/metrics code does that; this file only draws.

The PRO curve follows SPEC.md ("Evaluation protocol"): regions are 8-connected components of the ground
truth, PRO at a threshold is the mean overlap over all regions of all images, plotted against the
false-positive rate on normal pixels up to FPR 0.3. :func:`pro_curve` takes its points from
:func:`omniad_lite.metrics.pro_fpr_at`, the same regions and weights as the AU-PRO metric (the released code,
github easyoo/Omni-AD ``util/metric.py``, has no plotting).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

PRO_MAX_FPR = 0.3  # AU-PRO is integrated up to this false-positive rate (SPEC.md)
PRO_NUM_THRESHOLDS = 200  # thresholds sampled between the min and max of the maps
HEATMAP_CMAP = "jet"
HEATMAP_ALPHA = 0.5  # opacity of the anomaly map over the image
GT_CONTOUR_COLOR = "white"
PRED_CONTOUR_COLOR = "lime"
PANEL_INCHES = 2.2  # side of one image panel in a gallery
COLORBAR_LEFT, COLORBAR_WIDTH = 0.92, 0.015  # figure fractions of a gallery's colorbar
DEFAULT_BAR_METRICS = ("image_auroc", "pixel_auroc", "pixel_aupro")
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy 2 renamed trapz


def to_numpy(x) -> np.ndarray:
    """Convert a torch tensor or array-like to a NumPy array (detached, on CPU, float32 if floating)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def to_display_image(image, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """Turn a network input or a stored image into an ``(H, W, 3)`` float array in [0, 1] for ``imshow``.

    Args:
        image: ``(3, H, W)`` (channels first, e.g. a dataset item's ``"image"``) or ``(H, W, 3)``;
            uint8 images are scaled by 1/255.
        mean: per-channel mean used to normalise ``image``; undone when given together with ``std``.
        std: per-channel std used to normalise ``image``.
    """
    arr = to_numpy(image)
    if arr.ndim != 3:
        raise ValueError(f"image must have 3 dims (3, H, W) or (H, W, 3), got shape {arr.shape}")
    if arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)  # (H, W, 3)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if mean is not None and std is not None:
        arr = arr * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    return np.clip(arr, 0.0, 1.0)


def overlay(ax, image, anomaly_map, mask=None, *, vmin: float | None = None, vmax: float | None = None,
            threshold: float | None = None, alpha: float = HEATMAP_ALPHA, title: str | None = None):
    """Draw ``image`` with the anomaly map on top, the ground-truth outline and the thresholded prediction.

    Args:
        ax: matplotlib axes to draw into.
        image: ``(H, W, 3)`` display image in [0, 1] (see :func:`to_display_image`).
        anomaly_map: ``(H, W)`` anomaly map, same size as ``image``.
        mask: optional ``(H, W)`` ground truth in {0, 1}; its outline is drawn in white.
        vmin: colour-scale minimum (default: the map's min); share it across panels to compare them.
        vmax: colour-scale maximum (default: the map's max).
        threshold: if given, the outline of ``anomaly_map >= threshold`` is drawn in green.
        alpha: opacity of the heatmap.
        title: panel title.

    Returns:
        The ``AxesImage`` of the heatmap (for a colorbar).
    """
    amap = to_numpy(anomaly_map).astype(np.float32)
    if amap.shape != image.shape[:2]:
        raise ValueError(f"anomaly map shape {amap.shape} does not match image shape {image.shape[:2]}")
    ax.imshow(image)
    im = ax.imshow(amap, cmap=HEATMAP_CMAP, alpha=alpha, vmin=vmin, vmax=vmax)
    if mask is not None and to_numpy(mask).any():
        ax.contour(to_numpy(mask).astype(np.float32), levels=[0.5], colors=GT_CONTOUR_COLOR, linewidths=1)
    if threshold is not None and (amap >= threshold).any() and not (amap >= threshold).all():
        ax.contour((amap >= threshold).astype(np.float32), levels=[0.5], colors=PRED_CONTOUR_COLOR,
                   linewidths=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
    return im


def heatmap_gallery(images: Sequence[np.ndarray], maps, masks=None, titles: Sequence[str] | None = None, *,
                    vmin: float | None = None, vmax: float | None = None, threshold: float | None = None) -> Figure:
    """One column per sample: the image, its ground-truth mask, and the anomaly map overlaid.

    Args:
        images: ``N`` display images ``(H, W, 3)`` in [0, 1].
        maps: ``(N, H, W)`` anomaly maps.
        masks: optional ``(N, H, W)`` ground-truth masks in {0, 1}.
        titles: optional ``N`` column titles (e.g. class and score).
        vmin: shared colour-scale minimum (default: min over all maps).
        vmax: shared colour-scale maximum (default: max over all maps).
        threshold: optional prediction threshold drawn as a green outline.
    """
    maps = to_numpy(maps)
    n = len(images)
    if n == 0 or len(maps) != n:
        raise ValueError(f"heatmap_gallery needs the same non-zero number of images and maps, got {n} and {len(maps)}")
    vmin = float(maps.min()) if vmin is None else vmin
    vmax = float(maps.max()) if vmax is None else vmax
    fig, axes = plt.subplots(3, n, figsize=(PANEL_INCHES * n, PANEL_INCHES * 3), squeeze=False)
    for i in range(n):
        mask = None if masks is None else to_numpy(masks[i])
        axes[0, i].imshow(images[i])
        axes[0, i].set_title(titles[i] if titles else f"#{i}", fontsize=8)
        axes[1, i].imshow(np.zeros(maps[i].shape) if mask is None else mask, cmap="gray", vmin=0, vmax=1)
        im = overlay(axes[2, i], images[i], maps[i], mask, vmin=vmin, vmax=vmax, threshold=threshold)
        for ax in axes[:2, i]:
            ax.set_axis_off()
    for row, label in enumerate(("image", "ground truth", "anomaly map")):
        axes[row, 0].text(-0.08, 0.5, label, transform=axes[row, 0].transAxes, rotation=90, ha="right",
                          va="center", fontsize=9)
    fig.subplots_adjust(right=COLORBAR_LEFT - 0.02)
    pos = axes[2, -1].get_position()  # colorbar beside the map row, leaving every panel the same size
    fig.colorbar(im, cax=fig.add_axes((COLORBAR_LEFT, pos.y0, COLORBAR_WIDTH, pos.height)), label="anomaly score")
    return fig


def loss_curve(history, *, ax=None, logy: bool = True) -> Figure:
    """Plot every ``*loss*`` column of a training history against the step column.

    Args:
        history: a ``history.csv`` path (as the training engine writes it) or a DataFrame.
        ax: axes to draw into (default: a new figure); pass the same axes to redraw a live curve.
        logy: logarithmic y axis.
    """
    df = pd.read_csv(history) if isinstance(history, (str, Path)) else history
    x_col = next((c for c in ("step", "iteration", "iter", "epoch") if c in df.columns), None)
    y_cols = [c for c in df.columns if "loss" in c]
    if x_col is None or not y_cols:
        raise ValueError(f"history needs a step column and a loss column, got columns {list(df.columns)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3))
    fig = ax.figure
    ax.clear()
    for c in y_cols:
        ax.plot(df[x_col].to_numpy(), df[c].to_numpy(), label=c)
    if logy and (df[y_cols].to_numpy() > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel(x_col)
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def roc_curves(per_class: Mapping[str, tuple], *, ax=None) -> Figure:
    """Image-level ROC curves, one per class, with the AUROC in the legend.

    Args:
        per_class: ``{class: (image_scores (N,), image_labels (N,))}``.
        ax: axes to draw into (default: a new figure).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for cls, (scores, labels) in per_class.items():
        scores, labels = to_numpy(scores).ravel(), to_numpy(labels).ravel()
        if len(np.unique(labels)) < 2:
            raise ValueError(f"class {cls!r} needs both normal and anomalous images for a ROC curve")
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{cls} ({100 * roc_auc_score(labels, scores):.1f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="image ROC (AUROC ×100)")
    ax.legend(fontsize=7)
    return ax.figure


def pro_curve(maps, masks, *, max_fpr: float = PRO_MAX_FPR, num_thresholds: int = PRO_NUM_THRESHOLDS):
    """Per-region-overlap curve points up to ``max_fpr`` (SPEC.md evaluation protocol).

    Args:
        maps: ``(N, H, W)`` anomaly maps.
        masks: ``(N, H, W)`` ground truth in {0, 1}; regions are its 8-connected components.
        max_fpr: keep thresholds whose false-positive rate on normal pixels is at most this.
        num_thresholds: thresholds evenly spaced between the maps' min and max.

    Returns:
        ``(fpr, pro)``: arrays sorted by increasing FPR, starting at (0, 0) and ending at ``max_fpr``
        (the last point interpolated linearly), so ``trapezoid(pro, fpr) / max_fpr`` is the AU-PRO.
    """
    from .metrics import pro_fpr_at

    maps, masks = to_numpy(maps).astype(np.float64), to_numpy(masks) > 0.5
    if maps.shape != masks.shape or maps.ndim != 3:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must both be (N, H, W)")
    if not masks.any() or masks.all():
        raise ValueError("pro_curve needs ground truth with both anomalous and normal pixels")
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
    ax.legend(fontsize=7)
    return ax.figure


def pca_rgb(features) -> np.ndarray:
    """Project a feature map's channels onto its first three principal components, shown as RGB.

    Args:
        features: ``(C, H, W)`` feature map (C >= 3).

    Returns:
        ``(H, W, 3)`` array in [0, 1]; each channel is one component, min-max scaled, sign fixed so the
        largest loading is positive (so the picture does not flip between runs).
    """
    f = to_numpy(features).astype(np.float64)
    if f.ndim != 3 or f.shape[0] < 3:
        raise ValueError(f"pca_rgb needs a (C, H, W) feature map with C >= 3, got shape {f.shape}")
    c, h, w = f.shape
    x = f.reshape(c, h * w).T  # (H*W, C)
    x = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: (C, C), rows = components
    comps = vt[:3]  # (3, C)
    signs = np.sign(comps[np.arange(3), np.abs(comps).argmax(axis=1)])
    proj = x @ (comps * signs[:, None]).T  # (H*W, 3)
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    proj = (proj - lo) / np.where(hi > lo, hi - lo, 1.0)
    return proj.reshape(h, w, 3).astype(np.float32)


def feature_pca_figure(features: Sequence, image: np.ndarray | None = None,
                       titles: Sequence[str] | None = None) -> Figure:
    """The input image (optional) next to the PCA-to-RGB picture of each feature scale.

    Args:
        features: list of ``(C_i, H_i, W_i)`` feature maps (one image, e.g. the three teacher scales).
        image: optional ``(H, W, 3)`` display image shown first.
        titles: optional titles for the feature panels (default: shape of each map).
    """
    panels = ([image] if image is not None else []) + [pca_rgb(f) for f in features]
    names = (["input"] if image is not None else []) + list(
        titles or [f"{tuple(to_numpy(f).shape)}" for f in features])
    fig, axes = plt.subplots(1, len(panels), figsize=(PANEL_INCHES * len(panels), PANEL_INCHES + 0.4),
                             squeeze=False)
    for ax, panel, name in zip(axes[0], panels, names):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    return fig


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
        raise ValueError(f"metrics {missing} are not columns of the table; columns: {list(table.columns)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(table) * len(metrics) / 2), 3.2))
    x = np.arange(len(table))
    width = 0.8 / len(metrics)
    for j, m in enumerate(metrics):
        ax.bar(x + (j - (len(metrics) - 1) / 2) * width, table[m].to_numpy(dtype=float), width, label=m)
    ax.set_xticks(x, [str(i) for i in table.index], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("score")
    ax.legend(fontsize=7, ncols=len(metrics))
    ax.grid(axis="y", alpha=0.3)
    return ax.figure


def token_attention_maps(attention, *, image: np.ndarray | None = None, ncols: int = 8,
                         max_tokens: int = 16) -> Figure:
    """Where each learnable token looks: one panel per token, its attention over the H×W positions.

    Args:
        attention: ``(T, H, W)`` attention weights of ``T`` learnable tokens over the feature grid
            (average over heads before calling if you have ``(heads, T, H, W)``).
        image: optional ``(h, w, 3)`` display image drawn underneath (stretched to the grid extent).
        ncols: panels per row.
        max_tokens: draw at most this many tokens.
    """
    att = to_numpy(attention)
    if att.ndim != 3:
        raise ValueError(f"attention must be (tokens, H, W), got shape {att.shape}")
    n = min(len(att), max_tokens)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, min(n, ncols), figsize=(1.4 * min(n, ncols), 1.5 * nrows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if k >= n:
            continue
        h, w = att[k].shape
        if image is not None:
            ax.imshow(image, extent=(0, w, h, 0))
        ax.imshow(att[k], cmap="viridis", alpha=0.6 if image is not None else 1.0, extent=(0, w, h, 0))
        ax.set_title(f"token {k}", fontsize=7)
    return fig
