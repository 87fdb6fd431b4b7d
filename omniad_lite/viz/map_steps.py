"""How an anomaly map is made, drawn step by step: teacher features beside their reconstructions, per-scale maps.

The figures of notebook 01's worked example. Nothing here computes a model output: the notebook computes the
teacher features ``f_i``, the reconstructions ``f̂_i``, the per-scale maps ``1 - cos(f_i, f̂_i)``, their
upsampled mean and its blur (and asserts that they equal :func:`omniad_lite.evaluation.scoring.anomaly_map`);
these functions only draw them. A teacher map and its reconstruction are projected on **one** PCA basis per
scale (:func:`pca_rgb_pair`), so equal colours mean equal features and the two pictures can be compared.
Ours (the released code has no figures of this kind).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .overlays import GT_CONTOUR_COLOR, HEATMAP_CMAP, PANEL_INCHES, overlay, to_numpy

DISTANCE_CMAP = "inferno"  # 1 - cos maps drawn on their own (not over the image)
PEAK_MARKER = dict(marker="x", color="magenta", markersize=9, mew=2)  # where the image score (the maximum) is
ROW_LABEL_X = -0.08  # row labels left of the first column (axes fraction)
NUM_COMPONENTS = 3  # principal components shown as R, G, B


def pca_rgb_pair(teacher, reconstruction) -> tuple[np.ndarray, np.ndarray]:
    """A teacher feature map and its reconstruction on one shared PCA basis, as two RGB pictures.

    The basis (first three principal components) and the min-max scaling are fitted on the positions of
    *both* maps together, so the same feature vector gets the same colour in the two pictures.

    Args:
        teacher: ``(C, H, W)`` teacher feature map (C >= 3).
        reconstruction: ``(C, H, W)`` its reconstruction, same shape.

    Returns:
        ``(teacher_rgb, reconstruction_rgb)``: two ``(H, W, 3)`` arrays in [0, 1]; each component's sign is
        fixed so that its largest loading is positive (the colours do not flip between runs).
    """
    f, r = to_numpy(teacher).astype(np.float64), to_numpy(reconstruction).astype(np.float64)
    if f.ndim != 3 or f.shape != r.shape or f.shape[0] < NUM_COMPONENTS:
        raise ValueError(f"pca_rgb_pair needs two (C, H, W) maps of one shape with C >= 3, got {f.shape} and "
                         f"{r.shape}")
    c, h, w = f.shape
    both = np.concatenate([f.reshape(c, h * w), r.reshape(c, h * w)], axis=1).T  # (2·H·W, C)
    centred = both - both.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (C, C), rows = components
    comps = vt[:NUM_COMPONENTS]  # (3, C)
    signs = np.sign(comps[np.arange(NUM_COMPONENTS), np.abs(comps).argmax(axis=1)])
    proj = centred @ (comps * signs[:, None]).T  # (2·H·W, 3)
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    proj = ((proj - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)
    return proj[:h * w].reshape(h, w, 3), proj[h * w:].reshape(h, w, 3)


def reconstruction_figure(teacher: Sequence, reconstructions: Sequence, distances: Sequence,
                          titles: Sequence[str] | None = None, *, vmax: float | None = None) -> Figure:
    """Per scale: the teacher features, their reconstruction (shared PCA colours) and ``1 - cos`` between them.

    Args:
        teacher: three ``(C_i, H_i, W_i)`` teacher feature maps of one image.
        reconstructions: the three reconstructions, same shapes.
        distances: the three ``(H_i, W_i)`` maps ``1 - cos(f_i, f̂_i)``.
        titles: one column title per scale (default: the map's shape).
        vmax: top of the distance colour scale, shared by the three scales (default: their maximum); pass
            the same value for two images to compare them.

    Returns:
        A 3 x scales figure: rows "teacher", "reconstruction", "1 − cos"; one colour bar for the last row.
    """
    n = len(teacher)
    if not n or len(reconstructions) != n or len(distances) != n:
        raise ValueError(f"reconstruction_figure needs one reconstruction and one distance map per scale, got "
                         f"{n} scales, {len(reconstructions)} reconstructions, {len(distances)} distance maps")
    dists = [to_numpy(d).astype(np.float32) for d in distances]
    vmax = max(float(d.max()) for d in dists) if vmax is None else vmax
    fig, axes = plt.subplots(3, n, figsize=(PANEL_INCHES * n + 1.0, PANEL_INCHES * 3), squeeze=False)
    for k in range(n):
        f_rgb, r_rgb = pca_rgb_pair(teacher[k], reconstructions[k])
        axes[0, k].imshow(f_rgb, interpolation="nearest")
        axes[0, k].set_title(titles[k] if titles else f"{tuple(to_numpy(teacher[k]).shape)}", fontsize=9)
        axes[1, k].imshow(r_rgb, interpolation="nearest")
        shown = axes[2, k].imshow(dists[k], cmap=DISTANCE_CMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for row, label in enumerate(("teacher features", "reconstruction", "1 − cos")):
        axes[row, 0].set_ylabel(label, fontsize=9)
    fig.colorbar(shown, ax=axes[2].tolist(), fraction=0.03, pad=0.02, label="1 − cos")
    return fig


def map_assembly_figure(image: np.ndarray, mean_map, blurred, mask=None, *, vmax: float | None = None,
                        title: str | None = None) -> Figure:
    """The last steps of the map: the upsampled mean of the scales, its Gaussian blur, the final overlay.

    Args:
        image: ``(S, S, 3)`` display image in [0, 1].
        mean_map: ``(S, S)`` mean of the upsampled per-scale ``1 - cos`` maps.
        blurred: ``(S, S)`` the anomaly map (``mean_map`` after the Gaussian blur).
        mask: optional ``(S, S)`` ground truth in {0, 1}; its outline is drawn on every panel.
        vmax: top of the colour scale shared by the three map panels (default: their maximum).
        title: optional figure title.

    Returns:
        A figure of four panels: the input, the mean, the blurred map (its maximum, the image score, marked
        with a cross) and the blurred map over the image; one colour bar.
    """
    mean_map, blurred = to_numpy(mean_map).astype(np.float32), to_numpy(blurred).astype(np.float32)
    if mean_map.shape != blurred.shape or mean_map.shape != image.shape[:2]:
        raise ValueError(f"image {image.shape[:2]}, mean map {mean_map.shape} and blurred map {blurred.shape} "
                         "must have one size")
    vmax = max(float(mean_map.max()), float(blurred.max())) if vmax is None else vmax
    mask = None if mask is None or not to_numpy(mask).any() else to_numpy(mask).astype(np.float32)
    peak = np.unravel_index(int(blurred.argmax()), blurred.shape)  # (row, col) of the image score
    fig, axes = plt.subplots(1, 4, figsize=(PANEL_INCHES * 4 + 1.0, PANEL_INCHES + 0.5))
    axes[0].imshow(image)
    axes[0].set_title("input", fontsize=9)
    panels = ((axes[1], mean_map, "mean of the 3 upsampled maps"), (axes[2], blurred, "Gaussian blur, σ = 4"))
    for ax, m, name in panels:
        shown = ax.imshow(m, cmap=HEATMAP_CMAP, vmin=0.0, vmax=vmax)
        ax.set_title(name, fontsize=9)
    axes[2].plot(peak[1], peak[0], **PEAK_MARKER)
    overlay(axes[3], image, blurred, None, vmin=0.0, vmax=vmax, title=f"over the image (max {blurred.max():.3f})")
    axes[3].plot(peak[1], peak[0], **PEAK_MARKER)
    for ax in axes:
        if mask is not None:
            ax.contour(mask, levels=[0.5], colors=GT_CONTOUR_COLOR, linewidths=1)
        ax.set_axis_off()
    fig.colorbar(shown, ax=axes[1:].tolist(), fraction=0.02, pad=0.02, label="anomaly score")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ = ["map_assembly_figure", "pca_rgb_pair", "reconstruction_figure"]
