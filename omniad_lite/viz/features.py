"""Features made visible: PCA-to-RGB of feature maps, and where the learnable tokens attend."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .overlays import PANEL_INCHES, to_numpy


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
