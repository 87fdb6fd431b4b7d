"""Chosen test cases per class: the clearest detection, the weakest detection and the strongest false alarm.

A gallery of the globally best or worst images shows one easy class over and over; choosing per class shows
each class's own failure mode. :func:`pick_cases` chooses from an evaluation's per-image table,
:func:`case_grid` draws them (one row per class, one shared colour scale, the threshold outlined). Ours.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .overlays import COLORBAR_WIDTH, PANEL_INCHES, overlay

CASE_KINDS = ("clearest detection", "weakest detection", "strongest false alarm")


def pick_cases(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per class: the highest-scored anomalous image, the lowest-scored anomalous one, the highest-scored normal.

    Args:
        per_image: an evaluation's per-image table (``cls_name``, ``label``, ``score``), in dataset order.

    Returns:
        One row per class, one column per :data:`CASE_KINDS` entry, holding positions in ``per_image``.
    """
    rows = {}
    for cls, group in per_image.reset_index(drop=True).groupby("cls_name", sort=True):
        anomalous, normal = group[group["label"] == 1]["score"], group[group["label"] == 0]["score"]
        if anomalous.empty or normal.empty:
            raise ValueError(f"class {cls!r} needs anomalous and normal test images to pick cases")
        rows[cls] = dict(zip(CASE_KINDS, (anomalous.idxmax(), anomalous.idxmin(), normal.idxmax())))
    return pd.DataFrame.from_dict(rows, orient="index")[list(CASE_KINDS)]


def case_grid(cases: pd.DataFrame, images: Sequence[np.ndarray], maps: np.ndarray, masks: np.ndarray,
              titles: Sequence[str], *, threshold: float | None = None) -> Figure:
    """One row per class, one column per kind of case: image, map (one colour scale for all), outlines.

    Args:
        cases: the table of :func:`pick_cases`.
        images: display images ``(H, W, 3)`` for every position used in ``cases``.
        maps: ``(N, H, W)`` anomaly maps of all test images (indexed by the positions in ``cases``).
        masks: ``(N, H, W)`` ground truth.
        titles: one title per test image (indexed likewise).
        threshold: a pixel threshold drawn as a green outline (white: the ground truth).
    """
    used = cases.to_numpy().ravel()
    vmin, vmax = float(maps[used].min()), float(maps[used].max())
    n_rows, n_cols = cases.shape
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(PANEL_INCHES * n_cols + 1.2, PANEL_INCHES * n_rows),
                             squeeze=False)
    for r, (cls, row) in enumerate(cases.iterrows()):
        for c, kind in enumerate(cases.columns):
            i = int(row[kind])
            im = overlay(axes[r, c], images[i], maps[i].astype(np.float32), masks[i], vmin=vmin, vmax=vmax,
                         threshold=threshold, title=titles[i])
        axes[r, 0].text(-0.06, 0.5, cls, transform=axes[r, 0].transAxes, rotation=90, ha="right", va="center",
                        fontsize=10)
    for c, kind in enumerate(cases.columns):
        axes[0, c].set_title(f"{kind}\n{axes[0, c].get_title()}", fontsize=9)
    fig.subplots_adjust(left=0.06, right=0.86, wspace=0.05, hspace=0.25)
    fig.colorbar(im, cax=fig.add_axes((0.88, 0.3, COLORBAR_WIDTH, 0.4)), label="anomaly score (one scale)")
    return fig
