"""The ablation plot: every variant's seeds, their mean and range, against the reference variant.

Draws what :func:`omniad_lite.sweep.summarise` computes: one panel per metric, one row per variant; each seed
is a dot, the mean a bar, the seed range (min–max) a line; the reference variant's range is a shaded band and
its mean a dashed line. A variant whose difference from the reference exceeds both seed spreads together
(``summarise``'s verdict) is drawn red, and its label is bold when that holds for any metric.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import InputError

BEYOND_COLOUR = "tab:red"
WITHIN_COLOUR = "tab:gray"


def sweep_plot(runs: pd.DataFrame, summary: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """One horizontal panel per metric: seeds (dots), mean (bar), seed range (line), reference band.

    Args:
        runs: one row per run (``variant``, ``seed``, metric columns), from :func:`omniad_lite.sweep.run_sweep`.
        summary: :func:`omniad_lite.sweep.summarise` of ``runs`` (its ``attrs["reference"]`` names the band).
        metrics: the metric columns to draw (percent).
    """
    missing = [m for m in metrics if m not in runs.columns or f"{m}_beyond_spread" not in summary.columns]
    if missing:
        raise InputError(f"metrics {missing} are missing from the runs or the summary; summarise them first")
    variants = list(summary.index)
    reference = summary.attrs.get("reference", variants[0])
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics) + 1.5, 0.45 * len(variants) + 1.2),
                             sharey=True, squeeze=False)
    y = np.arange(len(variants))[::-1]  # first variant on top
    for ax, m in zip(axes[0], metrics):
        ref = summary.loc[reference]
        ax.axvspan(ref[f"{m}_min"], ref[f"{m}_max"], color="tab:blue", alpha=0.15, lw=0)
        ax.axvline(ref[m], color="tab:blue", lw=1, ls="--")
        for yi, name in zip(y, variants):
            row = summary.loc[name]
            colour = BEYOND_COLOUR if row[f"{m}_beyond_spread"] is True else WITHIN_COLOUR
            ax.barh(yi, row[m], height=0.6, color=colour, alpha=0.35)
            ax.plot([row[f"{m}_min"], row[f"{m}_max"]], [yi, yi], color=colour, lw=2)
            seeds = runs.loc[runs["variant"] == name, m].to_numpy(dtype=float)
            ax.scatter(seeds, np.full(len(seeds), yi), s=14, color="black", zorder=3)
        lo = np.nanmin(runs[m].to_numpy(dtype=float))
        hi = np.nanmax(runs[m].to_numpy(dtype=float))
        pad = max(1.0, 0.1 * (hi - lo))
        ax.set_xlim(lo - pad, min(100.0, hi + pad) if hi <= 100 else hi + pad)
        ax.set_title(m, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, variants, fontsize=8)
    for label, name in zip(axes[0][0].get_yticklabels(), variants):
        if any(summary.loc[name, f"{m}_beyond_spread"] is True for m in metrics):
            label.set_fontweight("bold")
    fig.suptitle(f"seeds (dots), mean (bar), seed range (line); band and dashed line: {reference}; "
                 f"red = difference beyond both seed spreads", fontsize=8)
    fig.tight_layout()
    return fig
