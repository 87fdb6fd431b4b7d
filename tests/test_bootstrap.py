"""omniad_lite.evaluation.bootstrap: percentile intervals against an exact enumeration and scipy."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from omniad_lite.evaluation.bootstrap import bootstrap_ci, image_metric_cis, resample_indices


def test_redraws_follow_the_exact_bootstrap_distribution():
    """Three values: the 27 equally likely redraws, enumerated, give the exact distribution of the mean."""
    values = np.array([0.0, 1.0, 5.0])
    exact = np.array([values[list(idx)].mean() for idx in itertools.product(range(3), repeat=3)])  # (27,)
    ci = bootstrap_ci(np.mean, values, n_resamples=40_000, seed=1)
    for v in np.unique(exact):  # the empirical CDF of the redraws against the exact one
        assert np.mean(ci.samples <= v + 1e-12) == pytest.approx(np.mean(exact <= v + 1e-12), abs=0.01)
    assert (ci.low, ci.high) == tuple(np.quantile(ci.samples, [0.025, 0.975]))
    assert ci.estimate == pytest.approx(2.0)


def test_unstratified_interval_matches_scipy():
    x = np.random.default_rng(0).normal(10.0, 2.0, size=40)
    ours = bootstrap_ci(np.mean, x, n_resamples=20_000, seed=3)
    ref = stats.bootstrap((x,), np.mean, n_resamples=20_000, method="percentile", confidence_level=0.95,
                          random_state=4).confidence_interval
    se = x.std(ddof=1) / np.sqrt(x.size)  # the interval is about ±1.96 standard errors wide
    assert ours.low == pytest.approx(ref.low, abs=0.05 * se) and ours.high == pytest.approx(ref.high, abs=0.05 * se)


def test_stratified_redraws_keep_each_stratum_and_its_members():
    strata = np.array([0, 0, 0, 1, 1, 0, 1])
    idx = resample_indices(strata.size, 500, np.random.default_rng(0), strata)
    assert (strata[idx] == strata).all()  # every position keeps its stratum
    assert set(np.unique(idx[:, strata == 1])) == {3, 4, 6}


def test_image_metric_cis_per_class():
    rows = []
    for cls, gap in (("easy", 10.0), ("hard", 0.3)):
        rng = np.random.default_rng(7)
        for label in (0, 1):
            for s in rng.normal(gap * label, 1.0, size=12):
                rows.append({"cls_name": cls, "label": label, "score": s})
    per_image = pd.DataFrame(rows)
    table = image_metric_cis(per_image, ["image_auroc"], n_resamples=300)
    easy, hard = table.loc[("easy", "image_auroc")], table.loc[("hard", "image_auroc")]
    assert easy.estimate == easy.low == easy.high == 100.0  # perfectly separated in every redraw
    g = per_image[per_image.cls_name == "hard"]
    assert hard.estimate == pytest.approx(100 * roc_auc_score(g.label, g.score))
    assert hard.low < hard.estimate < hard.high and (hard.normal, hard.anomalous) == (12, 12)


@pytest.mark.parametrize("kwargs, message", [(dict(level=1.5), "level=1.5"), (dict(strata=[0, 1]), "strata")])
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(np.mean, np.arange(5.0), **kwargs)
