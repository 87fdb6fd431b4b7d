"""Figures of notebook 03: the learning-rate schedule, and the loss next to the test metrics along the run.

Plotting only: the schedule comes from :func:`omniad_lite.training.optim.lr_schedule`, the loss from a run's
``history.csv``, the metrics from evaluating weights kept during training. Ours (the released code draws no figures).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from .table_display import readable

SCHEDULE_PANEL = (4.8, 2.8)  # inches of one schedule panel
DROP_STYLE = dict(color="0.4", ls=":", lw=1)  # the vertical line at the learning-rate drop


def lr_schedule_figure(schedules: Mapping[str, np.ndarray]) -> Figure:
    """One panel per schedule: the learning rate of every optimiser step, the drop marked and labelled.

    Args:
        schedules: name → ``(total_steps,)`` learning rates (e.g. ``{"demo preset": lrs, ...}``).
    """
    if not schedules:
        raise ValueError("lr_schedule_figure needs at least one schedule")
    fig, axes = plt.subplots(1, len(schedules), figsize=(SCHEDULE_PANEL[0] * len(schedules), SCHEDULE_PANEL[1]),
                             squeeze=False, layout="constrained")
    for ax, (name, lrs) in zip(axes[0], schedules.items()):
        lrs = np.asarray(lrs, dtype=np.float64)
        steps = np.arange(lrs.size)
        ax.step(steps, lrs, where="post", lw=2)
        changes = np.flatnonzero(np.diff(lrs)) + 1
        for s in changes:
            ax.axvline(s, **DROP_STYLE)
            ax.annotate(f"× {lrs[s] / lrs[s - 1]:g} at step {s:,}", (s, lrs[s]), xytext=(-6, 8),
                        textcoords="offset points", ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(lrs.min() / 2, lrs.max() * 2)
        ax.set_yticks(sorted(set(lrs.tolist())))  # only the levels the schedule takes
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_title(f"{name}: {lrs.size:,} steps", fontsize=10)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("learning rate")
        ax.grid(alpha=0.3, which="both")
    return fig


def training_progress_figure(history: pd.DataFrame, checkpoint_metrics: pd.DataFrame,
                             metrics: Sequence[str], drop_step: int | None = None) -> Figure:
    """The training loss per logged step, then one panel per test metric of the evaluated steps.

    Each metric has its own y range (they differ by tens of points, their changes by a few), and every point
    carries its value.

    Args:
        history: a run's ``history.csv`` (``step`` and ``loss`` columns).
        checkpoint_metrics: one row per evaluated set of weights, indexed by step, metric columns ×100.
        metrics: the columns to draw (titled with their papers' names).
        drop_step: the step from which the learning rate is dropped (a dotted line in every panel).
    """
    shown = readable(checkpoint_metrics[list(metrics)])
    widths = [2.0] + [1.0] * len(metrics)
    fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(3.0 + 2.2 * len(metrics), 3.2), layout="constrained",
                             gridspec_kw={"width_ratios": widths})
    ax_loss = axes[0]
    ax_loss.plot(history["step"], history["loss"], lw=1.5)
    ax_loss.set(xlabel="optimiser step", ylabel="loss (sum of 3 per-scale MSEs)", title="training loss")
    for ax, column in zip(axes[1:], shown.columns):
        ax.plot(shown.index, shown[column], marker="o", color="C1")
        for step in (shown.index[0], shown.index[-1]):  # the first and the last value, written out
            ax.annotate(f"{shown.loc[step, column]:.1f}", (step, shown.loc[step, column]), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=8)
        low, high = shown[column].min(), shown[column].max()
        pad = max(1.0, 0.15 * (high - low))
        ax.set_ylim(low - pad, high + 2 * pad)
        ax.set(xlabel="optimiser step", title=f"{column} (test, ×100)")
        ax.set_xticks(list(shown.index)[::2])
    for ax in axes:
        ax.grid(alpha=0.3)
        if drop_step is not None:
            ax.axvline(drop_step, **DROP_STYLE)
    if drop_step is not None:
        ax_loss.annotate("learning rate × 0.1", (drop_step, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(-4, -12), textcoords="offset points", ha="right", fontsize=8)
    return fig
