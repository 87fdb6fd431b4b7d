"""Anomaly maps drawn over images: matplotlib panels and galleries, and PNG overlays for ``predict``.

Functions take plain arrays (NumPy or torch; detached and moved to CPU here), draw, and return the figure
(or array) so notebooks show it and tests inspect it. No function computes a model output.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError

HEATMAP_CMAP = "jet"
HEATMAP_ALPHA = 0.5  # opacity of the anomaly map over the image
GT_CONTOUR_COLOR = "white"
PRED_CONTOUR_COLOR = "lime"
PANEL_INCHES = 2.2  # side of one image panel in a gallery
COLORBAR_LEFT, COLORBAR_WIDTH = 0.92, 0.015  # figure fractions of a gallery's colorbar
UINT8_MAX = 255.0


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
        raise InputError(f"image must have 3 dims (3, H, W) or (H, W, 3), got shape {arr.shape}")
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
        raise InputError(f"anomaly map shape {amap.shape} does not match image shape {image.shape[:2]}")
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
        raise InputError(f"heatmap_gallery needs the same non-zero number of images and maps, got {n} and {len(maps)}")
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


def heatmap_overlay(rgb: np.ndarray, amap: np.ndarray, vmin: float, vmax: float,
                    alpha: float = HEATMAP_ALPHA) -> np.ndarray:
    """Blend a colour-mapped anomaly map onto an image (for PNG files): ``(H, W, 3)`` uint8.

    Args:
        rgb: ``(H, W, 3)`` uint8 image.
        amap: ``(H, W)`` anomaly map, same size.
        vmin: map value drawn as the coldest colour.
        vmax: map value drawn as the hottest colour.
        alpha: weight of the heatmap.
    """
    norm = np.clip((amap - vmin) / max(vmax - vmin, np.finfo(np.float32).eps), 0.0, 1.0)
    heat = matplotlib.colormaps[HEATMAP_CMAP](norm)[..., :3]  # (H, W, 3) in [0, 1]
    blend = (1 - alpha) * rgb / UINT8_MAX + alpha * heat
    return np.round(blend * UINT8_MAX).astype(np.uint8)


# -- decisions: overlays at the image's own resolution on a fixed, threshold-anchored colour scale ----------
DECISION_VMAX = 2.0  # the colour scale spans normalised scores 0 (typical normal) .. 1 (threshold) .. 2
DECISION_COLORS = ((0.0, "#2c7bb6"), (0.35, "#abd9e9"), (0.5, "#ffffbf"), (0.75, "#fdae61"), (1.0, "#d7191c"))
DECISION_ALPHA = 0.5
ANOMALOUS_RGB, NORMAL_RGB, TEXT_RGB = (215, 25, 28), (26, 150, 65), (255, 255, 255)
FONT_FRACTION = 0.045  # text height as a share of the image's longer side
MIN_FONT_PX = 10


def decision_cmap():
    """The fixed colour map of decision overlays: blue (typical normal) → pale yellow (threshold) → red (2×)."""
    return LinearSegmentedColormap.from_list("omniad_decision", list(DECISION_COLORS))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def decision_overlay(rgb: np.ndarray, normalized_map: np.ndarray | None, label: str,
                     is_anomalous: bool | None, colour_bar: bool = True) -> np.ndarray:
    """The image at its own resolution, its normalised map on the fixed scale, the decision and a colour bar.

    Args:
        rgb: ``(H, W, 3)`` uint8 original image.
        normalized_map: ``(H, W)`` map on the normalised scale (0 = typical normal, 1 = threshold), or
            ``None`` (no threshold: the image is drawn without a map).
        label: the decision text written on the image (e.g. ``"ANOMALOUS 1.42 (bottle)"``).
        is_anomalous: colours the label (red / green; grey for ``None``).
        colour_bar: append the colour bar strip (a file of its own needs it; a gallery of overlays on the
            same fixed scale shows one, see :func:`decision_gallery`).

    Returns:
        ``(H, W + bar, 3)`` uint8: the overlay, then a colour bar strip on the right (``(H, W, 3)`` without).
    """
    h, w = rgb.shape[:2]
    out = rgb.astype(np.float32) / UINT8_MAX
    if normalized_map is not None:
        if normalized_map.shape != (h, w):
            raise InputError(f"map shape {normalized_map.shape} does not match image shape {(h, w)}")
        heat = decision_cmap()(np.clip(normalized_map / DECISION_VMAX, 0.0, 1.0))[..., :3]  # (H, W, 3)
        out = (1 - DECISION_ALPHA) * out + DECISION_ALPHA * heat
    font_px = max(MIN_FONT_PX, int(FONT_FRACTION * max(h, w)))
    canvas = Image.new("RGB", (w + 5 * font_px * colour_bar, h), (255, 255, 255))
    canvas.paste(Image.fromarray(np.round(out * UINT8_MAX).astype(np.uint8)), (0, 0))
    draw, font = ImageDraw.Draw(canvas), _font(font_px)
    box = draw.textbbox((0, 0), label, font=font)
    fill = (128, 128, 128) if is_anomalous is None else (ANOMALOUS_RGB if is_anomalous else NORMAL_RGB)
    pad = max(2, font_px // 4)
    draw.rectangle((0, 0, box[2] + 2 * pad, box[3] + 2 * pad), fill=fill)
    draw.text((pad, pad), label, fill=TEXT_RGB, font=font)
    if colour_bar:
        _colour_bar(draw, canvas, w, h, font_px, font)
    return np.asarray(canvas)


def _colour_bar(draw, canvas, x0: int, h: int, font_px: int, font) -> None:
    """A vertical gradient of the fixed scale (2 at the top, 0 at the bottom) with three labelled ticks."""
    top, bottom = font_px, h - font_px
    if bottom - top < 2:
        return
    values = np.linspace(DECISION_VMAX, 0.0, bottom - top)  # (L,) top to bottom
    strip = decision_cmap()(values / DECISION_VMAX)[:, :3]  # (L, 3)
    bar = np.repeat(strip[:, None, :], font_px, axis=1)  # (L, font_px, 3)
    canvas.paste(Image.fromarray(np.round(bar * UINT8_MAX).astype(np.uint8)), (x0 + font_px // 2, top))
    for value, text in ((DECISION_VMAX, "2"), (1.0, "1 thr"), (0.0, "0 normal")):
        y = top + (DECISION_VMAX - value) / DECISION_VMAX * (bottom - top - 1)
        draw.line((x0 + font_px // 2, y, x0 + font_px * 3 // 2, y), fill=(0, 0, 0), width=max(1, font_px // 8))
        draw.text((x0 + font_px * 7 // 4, y - font_px // 2), text, fill=(0, 0, 0), font=_font(max(8, font_px * 2 // 3)))


def decision_label(score: float | None, normalized: float | None, is_anomalous: bool | None,
                   cls_name: str | None) -> str:
    """The text written on an overlay: the decision, the normalised score (0 = typical normal, 1 = threshold;
    the raw score without a threshold) and the class."""
    if score is None:
        return "unreadable"
    what = "SCORE" if is_anomalous is None else ("ANOMALOUS" if is_anomalous else "normal")
    value = f"{normalized:.2f} (thr = 1)" if normalized is not None else f"{score:.4f}"
    return f"{what} {value}" + (f" [{cls_name}]" if cls_name else "")


def decision_gallery(overlays: Sequence[np.ndarray], titles: Sequence[str] | None = None, columns: int = 4,
                     colour_bar: bool = False) -> Figure:
    """Overlays from :func:`decision_overlay` in a grid (for notebooks).

    Args:
        overlays: images from :func:`decision_overlay`.
        titles: one per overlay.
        columns: panels per row.
        colour_bar: add one colour bar of the fixed decision scale for the whole grid (for overlays drawn
            with ``colour_bar=False``: every panel shares the scale, so one bar says it all).
    """
    n = len(overlays)
    if n == 0:
        raise InputError("decision_gallery needs at least one overlay")
    cols = min(columns, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_INCHES * 1.3 * cols, PANEL_INCHES * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(overlays[i])
            if titles:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    if colour_bar:
        bar = fig.colorbar(ScalarMappable(Normalize(0.0, DECISION_VMAX), decision_cmap()), ax=axes.ravel().tolist(),
                           fraction=0.02, pad=0.01, ticks=[0.0, 1.0, DECISION_VMAX])
        bar.ax.set_yticklabels(["0: typical normal", "1: threshold", f"{DECISION_VMAX:g}"])
        bar.set_label("normalised score (map overlay, clipped to 0–2)")
    return fig
