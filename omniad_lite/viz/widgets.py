"""An ipywidgets explorer for evaluation results: pick a class, an image and a threshold, see the overlay.

:func:`explorer` returns an ``ipywidgets.VBox`` (class dropdown, image slider, threshold slider and the
figure) when widgets can render — ipywidgets is installed and the code runs in a Jupyter kernel — and
otherwise a static :func:`omniad_lite.viz.heatmap_gallery` of a few images per class, so the same
notebook cell works in JupyterLab, under papermill, in a plain Python script and on a static viewer.
The released code (github easyoo/Omni-AD) has no visual explorer; this part is ours.
"""
from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import progress
from ..errors import InputError, SetupError
from .curve_plots import loss_curve
from .overlays import heatmap_gallery, overlay, to_numpy

STATIC_PER_CLASS = 2  # images per class in the static fallback gallery
THRESHOLD_STEPS = 100  # slider resolution between the maps' min and max
FALLBACK_DPI = 72  # resolution of the static PNG stored next to the widget
STATIC_NOTE = "[interactive explorer: run this cell in JupyterLab; its static view follows]"


@dataclass
class ExplorerData:
    """What the explorer shows; all arrays share the first dimension ``N``.

    Args:
        images: ``(N, H, W, 3)`` display images in [0, 1].
        maps: ``(N, H, W)`` anomaly maps.
        masks: ``(N, H, W)`` ground-truth masks in {0, 1}.
        cls_names: ``N`` class names.
        scores: ``(N,)`` image scores.
        labels: ``(N,)`` image labels (0 normal, 1 anomalous).
    """

    images: np.ndarray
    maps: np.ndarray
    masks: np.ndarray
    cls_names: Sequence[str]
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.images, self.maps, self.masks = to_numpy(self.images), to_numpy(self.maps), to_numpy(self.masks)
        self.scores, self.labels = to_numpy(self.scores).ravel(), to_numpy(self.labels).ravel()
        n = len(self.images)
        sizes = {"maps": len(self.maps), "masks": len(self.masks), "cls_names": len(self.cls_names),
                 "scores": len(self.scores), "labels": len(self.labels)}
        bad = {k: v for k, v in sizes.items() if v != n}
        if n == 0 or bad:
            raise InputError(f"ExplorerData: {n} images but {bad or 'none'}; give one entry per image")

    @classmethod
    def from_eval(cls, result, dataset) -> ExplorerData:
        """The images of ``dataset`` with the maps of ``result`` (``evaluate(..., keep_maps=True)``)."""
        if result.maps is None:
            raise InputError("the explorer needs the maps: evaluate(..., keep_maps=True)")
        images = np.stack([dataset.raw(i)[0] for i in range(len(dataset))])  # (N, S, S, 3) uint8
        return cls(images=images, maps=result.maps.astype(np.float32), masks=result.masks,
                   cls_names=list(result.per_image["cls_name"]), scores=result.per_image["score"].to_numpy(),
                   labels=result.per_image["label"].to_numpy())

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.cls_names))

    def indices(self, cls_name: str) -> list[int]:
        """Positions of the images of ``cls_name``, anomalous first, then by decreasing score."""
        idx = [i for i, c in enumerate(self.cls_names) if c == cls_name]
        if not idx:
            raise InputError(f"class {cls_name!r} not in the results; classes: {self.classes}")
        return sorted(idx, key=lambda i: (-self.labels[i], -self.scores[i]))


def widgets_available() -> bool:
    """True when ipywidgets is importable and we run inside a Jupyter kernel (which can display widgets)."""
    try:
        import ipywidgets  # noqa: F401 (lazy: optional, the notebooks extra)
        from IPython import get_ipython  # lazy: optional, the notebooks extra
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def draw_sample(data: ExplorerData, index: int, threshold: float, fig: Figure | None = None) -> Figure:
    """Three panels for one image: the image with its ground truth, the overlay, the thresholded map.

    Args:
        data: the results.
        index: which image.
        threshold: anomaly-score threshold; pixels ``>= threshold`` are predicted anomalous.
        fig: a figure to reuse (cleared first); default a new one.
    """
    fig = fig or plt.figure(figsize=(7.5, 2.8))
    fig.clear()
    axes = fig.subplots(1, 3)
    image, amap, mask = data.images[index], data.maps[index], data.masks[index]
    axes[0].imshow(image)
    if mask.any():
        axes[0].contour(mask.astype(np.float32), levels=[0.5], colors="white", linewidths=1)
    axes[0].set_title(f"{data.cls_names[index]} · {'anomalous' if data.labels[index] else 'normal'}", fontsize=8)
    axes[0].set_axis_off()
    overlay(axes[1], image, amap, mask, vmin=float(data.maps.min()), vmax=float(data.maps.max()),
            threshold=threshold, title=f"score {data.scores[index]:.3f}")
    pred = (amap >= threshold).astype(np.float32)  # (H, W)
    axes[2].imshow(pred, cmap="gray", vmin=0, vmax=1)
    axes[2].set_title(f"map ≥ {threshold:.3f} ({100 * pred.mean():.1f}% of pixels)", fontsize=8)
    axes[2].set_axis_off()
    return fig


def static_gallery(data: ExplorerData, per_class: int = STATIC_PER_CLASS, threshold: float | None = None) -> Figure:
    """The fallback: the ``per_class`` highest-ranked images of every class (anomalous first)."""
    idx = [i for c in data.classes for i in data.indices(c)[:per_class]]
    titles = [f"{data.cls_names[i]} {data.scores[i]:.2f}" for i in idx]
    fig = heatmap_gallery([data.images[i] for i in idx], data.maps[idx], data.masks[idx], titles,
                          vmin=float(data.maps.min()), vmax=float(data.maps.max()), threshold=threshold)
    if threshold is not None:  # a static picture cannot show the slider: say which threshold it drew
        fig.suptitle(f"the {per_class} highest-scored test images of each class; green outline: map ≥ "
                     f"{threshold:.3f} (the explorer's threshold), white: ground truth", fontsize=10)
    return fig


def explorer(data: ExplorerData, *, threshold: float | None = None, static: bool | None = None):
    """Interactive explorer (class dropdown, image slider, threshold slider) or its static fallback.

    Args:
        data: the results to explore (see :class:`ExplorerData`).
        threshold: initial threshold (default: midway between the maps' min and max).
        static: ``True`` forces the static gallery, ``False`` forces widgets (raises if ipywidgets is
            missing), ``None`` picks widgets when :func:`widgets_available`.

    Returns:
        An ``ipywidgets.VBox`` to display, or a matplotlib ``Figure`` (the static fallback).
    """
    lo, hi = float(data.maps.min()), float(data.maps.max())
    threshold = (lo + hi) / 2 if threshold is None else float(threshold)
    if static is None:
        static = not widgets_available()
    if static:
        return static_gallery(data, threshold=threshold)
    try:
        import ipywidgets as W  # lazy: optional, the notebooks extra
    except ImportError as e:
        raise SetupError("explorer(static=False) needs ipywidgets: pip install ipywidgets") from e

    cls_box = W.Dropdown(options=data.classes, value=data.classes[0], description="class")
    img_slider = W.IntSlider(min=0, max=len(data.indices(data.classes[0])) - 1, value=0, description="image",
                             continuous_update=False)
    thr_slider = W.FloatSlider(min=lo, max=hi, step=(hi - lo) / THRESHOLD_STEPS or 1.0, value=threshold,
                               description="threshold", readout_format=".3f", continuous_update=False)
    out = W.Output()

    def redraw(*_):
        index = data.indices(cls_box.value)[img_slider.value]
        with out:
            out.clear_output(wait=True)
            box.last_drawn = (index, thr_slider.value)
            display_figure(draw_sample(data, index, thr_slider.value))

    def on_class(change):
        img_slider.value = 0
        img_slider.max = len(data.indices(change["new"])) - 1
        redraw()

    cls_box.observe(on_class, names="value")
    img_slider.observe(redraw, names="value")
    thr_slider.observe(redraw, names="value")
    box = W.VBox([W.HBox([cls_box, img_slider, thr_slider]), out])
    box.redraw = redraw  # tests and notebooks can force a draw
    box.last_drawn = None  # (image index, threshold) of the figure on screen
    redraw()
    add_png_fallback(box, static_gallery(data, threshold=threshold))
    return box


def add_png_fallback(widget, fig: Figure) -> None:
    """Give ``widget`` a static picture of ``fig`` for viewers that cannot run widgets, then close ``fig``.

    Interactive (JupyterLab with a kernel): the display bundle holds the widget view and the PNG, so a
    saved notebook still shows the picture where widgets do not render (GitHub, an untrusted notebook).
    Batch-executed (papermill, nbconvert, nbval; see :func:`omniad_lite.progress.interactive_frontend`):
    two outputs, the widget (its state saved by the runner) with a one-line note as its text, then the PNG
    as an output of its own — nbconvert's HTML picks the widget view over any PNG in the same bundle, so
    only a separate image shows there without JavaScript.
    ipywidgets 7 (Colab's) displays through ``_ipython_display_`` and has no bundle to extend: the widget is
    left as it is.
    """
    widget_bundle = getattr(widget, "_repr_mimebundle_", None)
    if widget_bundle is None:
        plt.close(fig)
        return
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FALLBACK_DPI, bbox_inches="tight")
    plt.close(fig)
    png = buf.getvalue()

    def bundle(**kwargs):
        data = widget_bundle(**kwargs) or {"text/plain": repr(widget)}
        return {**data, "image/png": base64.b64encode(png).decode("ascii")}

    def ipython_display():
        from IPython.display import Image, display  # lazy: optional, the notebooks extra

        if progress.interactive_frontend():
            display(bundle(), raw=True)
            return
        view = {k: v for k, v in (widget_bundle() or {}).items() if k != "image/png"}
        display({**view, "text/plain": STATIC_NOTE}, raw=True)
        display(Image(data=png, format="png"))

    widget._repr_mimebundle_ = bundle
    widget._ipython_display_ = ipython_display


def display_figure(fig: Figure) -> None:
    """Show ``fig`` through IPython's display (a PNG in notebooks), then close it so it is not shown twice."""
    from IPython.display import display  # lazy: optional, the notebooks extra

    display(fig)
    plt.close(fig)


class LiveLossPlot:
    """A ``train(..., callback=...)`` callback that redraws the loss curve from ``history.csv`` as it grows.

    In a notebook the figure is updated in place (one output, ``display_id``); elsewhere it does nothing,
    so scripts pay no cost. Call the object once more after training to draw the final curve.

    Args:
        run_dir: the run directory ``train`` writes (its ``history.csv`` is read).
        every_s: redraw at most this often (seconds).
    """

    def __init__(self, run_dir, every_s: float = 5.0):
        self.history = Path(run_dir) / "history.csv"
        self.every_s = every_s
        self._last = 0.0
        self._handle = None
        self.redraws = 0

    def __call__(self, step: int | None = None, model=None) -> None:
        now = time.monotonic()
        if step is not None and (now - self._last < self.every_s or not progress.interactive_frontend()):
            return  # nobody watches a batch run: only the final call draws
        self._last = now
        if not widgets_available() or not self.history.is_file():
            return
        try:
            history = pd.read_csv(self.history)
        except (OSError, ValueError):  # the file is being appended: try at the next step
            return
        if len(history) < 1:
            return
        from IPython.display import display  # lazy: optional, the notebooks extra

        fig = loss_curve(history)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)
        self.redraws += 1
