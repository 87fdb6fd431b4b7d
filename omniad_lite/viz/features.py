"""Features made visible: PCA-to-RGB of feature maps, where the learnable tokens attend, what each branch sees."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .overlays import PANEL_INCHES, to_numpy

ATTENTION_CMAP = "magma"
TOKEN_PANEL_INCHES = 1.2  # side of one token-attention panel
COLORBAR_SHRINK = 0.85  # colour bar height relative to the panels it serves
ATTENTION_VMAX_PERCENTILE = 99.5  # colour scale of attention maps: 0 up to this percentile of all panels
SENSITIVITY_RANGE = 1e-3  # log colour scale of sensitivity maps: from this fraction of the maximum up
OVERLAY_CMAP = "RdBu_r"  # attention over the image: blue = looks away, white = uniform, red = looks here
OVERLAY_ALPHA = 0.6  # opacity of the attention over the grey image
OVERLAY_PANEL_INCHES = 1.7
OVERLAY_MIN_PEAK = 2.0  # the log scale spans at least 1/2 .. 2: near-uniform maps stay white, not noise


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

    Drawn relative to uniform attention (weight × H·W: 1 = the token looks everywhere equally, 4 = four
    times its uniform share), on one colour scale for all panels (see :func:`token_attention_comparison`).

    Args:
        attention: ``(T, H, W)`` attention weights of ``T`` learnable tokens over the feature grid (each map
            sums to 1; average over heads before calling if you have ``(heads, T, H, W)``).
        image: optional ``(h, w, 3)`` display image, shown in the first panel.
        ncols: token panels per row.
        max_tokens: draw at most this many tokens.
    """
    att = _attention_array(attention)[:max_tokens]
    return token_attention_comparison({"": att}, image=image, ncols=ncols)


def token_attention_comparison(rows: Mapping[str, object], *, image: np.ndarray | None = None,
                               ncols: int = 8, max_tokens: int | None = None) -> Figure:
    """Token attention maps of several blocks (e.g. trained vs untrained), one colour scale for all of them.

    Args:
        rows: ``{label: (T, H, W) attention}``; each label starts a row of panels (wrapping after ``ncols``).
        image: optional ``(h, w, 3)`` display image shown at the start of every row.
        ncols: token panels per row.
        max_tokens: draw at most this many tokens per block (default all).

    Returns:
        The figure; every panel is ``weight × H·W`` (1 = uniform) on the same colour scale, from 0 to the
        :data:`ATTENTION_VMAX_PERCENTILE` percentile of all panels (at least 1), with a colour bar.
    """
    arrays = {label: _attention_array(a)[:max_tokens] for label, a in rows.items()}
    relative = {label: a * a.shape[1] * a.shape[2] for label, a in arrays.items()}  # (T, H, W), 1 = uniform
    values = np.concatenate([r.ravel() for r in relative.values()])
    vmax = max(float(np.percentile(values, ATTENTION_VMAX_PERCENTILE)), 1.0)  # a few peaks would flatten the rest
    lead = 1 if image is not None else 0
    layout = [(label, chunk) for label, r in relative.items()
              for chunk in (range(k, min(k + ncols, len(r))) for k in range(0, len(r), ncols))]
    width = lead + min(ncols, max(len(r) for r in relative.values()))
    fig, axes = plt.subplots(len(layout), width, figsize=(TOKEN_PANEL_INCHES * width + 0.8,
                                                          (TOKEN_PANEL_INCHES + 0.3) * len(layout)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for row, (label, tokens) in enumerate(layout):
        if image is not None:
            axes[row, 0].imshow(image)
            axes[row, 0].set_title(label or "input", fontsize=8, loc="left")
        for col, k in enumerate(tokens, start=lead):
            shown = axes[row, col].imshow(relative[label][k], cmap=ATTENTION_CMAP, vmin=0, vmax=vmax,
                                          interpolation="nearest")
            axes[row, col].set_title(f"token {k}", fontsize=7)
    fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, shrink=COLORBAR_SHRINK,
                 label=f"attention ÷ uniform (1 = uniform; top {100 - ATTENTION_VMAX_PERCENTILE:g} % clipped)")
    return fig


def token_attention_overlay(attention, image: np.ndarray, *, ncols: int = 4) -> Figure:
    """Where each learnable token looks, drawn over the image: one panel per token, every token shown.

    Each map is drawn relative to uniform attention (weight × H·W: 1 = the token looks everywhere equally)
    on one **log** colour scale centred on 1 and symmetric (``1/peak`` to ``peak``, the largest value of all
    panels, at least :data:`OVERLAY_MIN_PEAK`), so the peaks are never clipped; values below ``1/peak`` get
    the bottom colour. The map is
    stretched over a grey copy of the image.

    Args:
        attention: ``(T, H, W)`` attention weights of ``T`` tokens over the feature grid (each sums to 1).
        image: ``(h, w, 3)`` display image in [0, 1].
        ncols: panels per row.

    Returns:
        The figure; panel titles give each token's peak (× uniform).
    """
    att = _attention_array(attention)
    t, h, w = att.shape
    relative = att * h * w  # (T, H, W), 1 = uniform
    peak = max(float(relative.max()), OVERLAY_MIN_PEAK)
    norm = LogNorm(vmin=1.0 / peak, vmax=peak)
    grey = np.repeat(np.asarray(image, np.float32).mean(axis=-1, keepdims=True), 3, axis=-1)  # (h, w, 3)
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)  # the image stretched onto the H × W grid
    rows = -(-t // ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(OVERLAY_PANEL_INCHES * ncols + 1.0,
                                                   (OVERLAY_PANEL_INCHES + 0.25) * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if k >= t:
            continue
        ax.imshow(grey, extent=extent)
        shown = ax.imshow(np.clip(relative[k], norm.vmin, None), cmap=OVERLAY_CMAP, norm=norm,
                          alpha=OVERLAY_ALPHA, extent=extent, interpolation="nearest")
        ax.set_title(f"token {k} · peak {relative[k].max():.0f}×", fontsize=8)
    top = int(np.floor(np.log2(peak)))
    step = max(1, -(-top // 3))  # at most about 7 ticks: powers of two, symmetric around 1
    ticks = [2.0 ** k for k in range(-top, top + 1, step)]
    bar = fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, shrink=COLORBAR_SHRINK,
                       label="attention ÷ uniform (log; 1 = uniform)", ticks=ticks)
    bar.ax.minorticks_off()
    bar.ax.set_yticklabels([f"{t:g}" if t >= 1 else f"1/{1 / t:g}" for t in ticks])
    return fig


def sensitivity_maps(maps: Mapping[str, object], position: tuple[int, int], *,
                     image: np.ndarray | None = None) -> Figure:
    """Where each branch's output at one position gets its input from: one panel per branch, a log scale.

    Args:
        maps: ``{label: (H, W) map}``, e.g. from :func:`omniad_lite.viz.attention.branch_sensitivity`
            (each sums to 1: the share of the output's sensitivity coming from each input position).
        position: ``(row, col)`` of the output position, marked with a cross.
        image: optional ``(h, w, 3)`` display image shown first (stretched to the grid).
    """
    arrays = {label: to_numpy(m).astype(np.float64) for label, m in maps.items()}
    vmax = max(float(a.max()) for a in arrays.values())
    norm = LogNorm(vmin=vmax * SENSITIVITY_RANGE, vmax=vmax)  # zero (no influence) is drawn as the minimum
    panels = len(arrays) + (image is not None)
    fig, axes = plt.subplots(1, panels, figsize=(PANEL_INCHES * 1.3 * panels + 0.8, PANEL_INCHES * 1.4),
                             squeeze=False)
    axes = axes[0]
    if image is not None:
        h, w = next(iter(arrays.values())).shape
        axes[0].imshow(image, extent=(-0.5, w - 0.5, h - 0.5, -0.5))
        axes[0].set_title("input", fontsize=9)
    for ax, (label, a) in zip(axes[int(image is not None):], arrays.items()):
        shown = ax.imshow(np.clip(a, norm.vmin, None), cmap=ATTENTION_CMAP, norm=norm, interpolation="nearest")
        ax.set_title(label, fontsize=9)
    for ax in axes:
        ax.plot(position[1], position[0], marker="+", color="red", markersize=12, mew=2)
        ax.set_axis_off()
    fig.colorbar(shown, ax=list(axes), fraction=0.03, pad=0.02, label="share of the sensitivity (log)")
    return fig


def _attention_array(attention) -> np.ndarray:
    att = to_numpy(attention).astype(np.float64)
    if att.ndim != 3:
        raise ValueError(f"attention must be (tokens, H, W), got shape {att.shape}")
    return att
