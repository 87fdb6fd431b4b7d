"""omniad_lite.viz.training and .cases: the figures of notebooks 03 and 04 draw what they are given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from omniad_lite.viz.cases import CASE_KINDS, case_grid, pick_cases  # noqa: E402
from omniad_lite.viz.metric_plots import interval_figure, pro_example_figure, roc_pr_figure  # noqa: E402
from omniad_lite.viz.training import lr_schedule_figure, training_progress_figure  # noqa: E402


def test_lr_schedule_figure_marks_the_drop():
    lrs = np.r_[np.full(8, 4e-3), np.full(2, 4e-4)]
    fig = lr_schedule_figure({"demo preset": lrs, "paper": np.full(5, 1e-3)})
    ax = fig.axes[0]
    assert ax.get_title() == "demo preset: 10 steps" and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.texts] == ["× 0.1 at step 8"]
    assert ax.lines[0].get_ydata().tolist() == pytest.approx(lrs.tolist())
    assert not fig.axes[1].texts  # a constant schedule has no drop to mark
    with pytest.raises(ValueError):
        lr_schedule_figure({})


def test_training_progress_figure_labels_every_checkpoint():
    history = pd.DataFrame({"step": [5, 10, 15], "loss": [3.0, 2.0, 1.5]})
    checkpoints = pd.DataFrame({"image_auroc": [60.0, 95.5], "pixel_ap": [10.0, 51.6]}, index=[0, 300])
    fig = training_progress_figure(history, checkpoints, ["image_auroc", "pixel_ap"], drop_step=240)
    loss_ax, auroc_ax, ap_ax = fig.axes
    assert auroc_ax.get_title() == "I-AUROC (test, ×100)"
    assert [t.get_text() for t in ap_ax.texts] == ["10.0", "51.6"]
    low, high = auroc_ax.get_ylim()
    assert 50 < low < 60 and 95.5 < high  # the axis spans the values, not zero to 100


def test_pick_cases_per_class():
    per_image = pd.DataFrame({"cls_name": ["a", "a", "a", "a", "b", "b", "b"],
                              "label": [0, 1, 1, 0, 1, 0, 0],
                              "score": [0.5, 0.9, 0.2, 0.1, 0.3, 0.8, 0.4]})
    cases = pick_cases(per_image)
    assert list(cases.columns) == list(CASE_KINDS)
    assert cases.loc["a"].tolist() == [1, 2, 0] and cases.loc["b"].tolist() == [4, 4, 5]
    rng = np.random.default_rng(0)
    images = rng.random((7, 8, 8, 3))
    maps = rng.random((7, 8, 8))
    fig = case_grid(cases, images, maps, maps > 0.9, [f"#{i}" for i in range(7)], threshold=0.5)
    assert len(fig.axes) == 2 * 3 + 1  # six panels and one colour bar
    assert fig.axes[0].get_title() == "clearest detection\n#1"
    with pytest.raises(ValueError, match="class 'c'"):
        pick_cases(pd.DataFrame({"cls_name": ["c"], "label": [1], "score": [0.1]}))


def test_metric_figures():
    fig = roc_pr_figure(np.array([0, 0.1, 1]), np.array([0, 0.8, 1]), np.array([1, 0.8, 0]),
                        np.array([0.02, 0.4, 1]), 0.02, point=(0.1, 0.8, 0.4))
    assert "AP = 2.0 %" in fig.axes[1].get_legend().get_texts()[0].get_text()
    regions = np.zeros((4, 4), int)
    regions[0, :2], regions[3, 3] = 1, 2
    fig = pro_example_figure(np.random.default_rng(0).random((4, 4)), regions, np.array([0, 0.2, 0.5]),
                             np.array([0, 0.5, 1.0]), 0.3)
    assert [t.get_text() for t in fig.axes[0].texts] == ["region 1\n2 px", "region 2\n1 px"]
    cis = pd.DataFrame({"class": ["a", "b"], "metric": ["image_auroc"] * 2, "estimate": [90.0, 100.0],
                        "low": [80.0, 100.0], "high": [97.0, 100.0]}).set_index(["class", "metric"])
    fig = interval_figure(cis, "image_auroc")
    assert fig.axes[0].get_xlim()[0] < 80 and fig.axes[0].texts[0].get_text() == "90.0 [80.0, 97.0]"
