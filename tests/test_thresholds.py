"""Thresholds: the FPR guarantee on the normal images, F1-optimality (against a brute force with sklearn),
the normalised scale, the recorded choices and the warnings for tiny held-out sets."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from omniad_lite.evaluation.thresholds import (
    F1_TUNED_ON,
    OWN_VALIDATION,
    POOLED,
    Thresholds,
    build_thresholds,
    f1_optimal_threshold,
    threshold_at_fpr,
)


@pytest.mark.parametrize("n", [1, 3, 10, 99, 100, 101, 1000])
@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.1, 0.25])
def test_threshold_at_fpr_flags_at_most_f_and_is_the_smallest(n, fpr):
    rng = np.random.default_rng(n)
    scores = np.round(rng.gamma(2.0, 0.1, n), 3).astype(np.float32)  # rounded: many ties
    t = threshold_at_fpr(scores, fpr)
    flagged = (scores.astype(np.float64) >= t).sum()
    allowed = math.floor(fpr * n + 1e-9)
    assert flagged <= allowed  # the guarantee: at most f·n false positives on these normal images
    # smallest: brute force over every candidate threshold (each distinct score), the lowest one that keeps
    # the guarantee flags the same images
    candidates = sorted(set(scores.tolist()))
    best = min((c for c in candidates if (scores >= c).sum() <= allowed), default=None)
    expected = 0 if best is None else int((scores >= best).sum())
    assert flagged == expected


def test_threshold_at_fpr_edge_cases():
    assert threshold_at_fpr([0.5], 0.01) > 0.5  # one normal image: just above it
    assert threshold_at_fpr(np.arange(100.0), 0.01) == np.nextafter(98.0, np.inf)  # one of 100 may be flagged
    for bad in (0.0, 0.5, -0.1, True, "0.01"):
        with pytest.raises(ValueError, match="must be a false-positive rate in"):
            threshold_at_fpr([1.0, 2.0], bad)


def test_f1_optimal_threshold_matches_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 2)
    t, f1 = f1_optimal_threshold(scores, labels)
    brute = max(f1_score(labels, scores >= c) for c in np.unique(scores))
    assert f1 == pytest.approx(brute) and f1_score(labels, scores >= t) == pytest.approx(brute)
    assert f1_optimal_threshold(scores, np.zeros(60)) is None


def make_payload(method="fpr", fpr=0.05, n_normal=40):
    rng = np.random.default_rng(1)
    normal = {c: (list(rng.normal(mu, 0.05, n_normal)), [f"{c}/{i}.png" for i in range(n_normal)])
              for c, mu in (("a", 1.0), ("b", 2.0))}
    test = {c: (list(np.r_[rng.normal(mu, 0.05, 10), rng.normal(mu + 0.5, 0.05, 10)]), [0] * 10 + [1] * 10)
            for c, mu in (("a", 1.0), ("b", 2.0))}
    return normal, test, build_thresholds(normal, test, method=method, fpr=fpr)


def test_build_thresholds_records_both_and_decides():
    normal, test, payload = make_payload()
    th = Thresholds(payload)
    assert th.classes == ["a", "b"] and th.method == "fpr" and th.fpr == 0.05
    for c in ("a", "b"):
        e = th.entry(c)
        s = np.asarray(normal[c][0])
        assert e["threshold"] == e["fpr_threshold"] == threshold_at_fpr(s, 0.05)
        assert (s >= e["threshold"]).sum() <= math.floor(0.05 * s.size) == e["normal_false_positives"]
        assert e["normal_level"] == pytest.approx(np.median(s))
        assert e["f1_tuned_on"] == F1_TUNED_ON and e["f1"] == pytest.approx(1.0)
        assert e["test"]["n_normal"] == 10 and e["test"]["n_anomalous"] == 10
        # normalised scale: the typical normal reads 0, the threshold 1
        assert th.decide(e["normal_level"], c)[1] == pytest.approx(0.0)
        t, norm, anomalous = th.decide(e["threshold"], c)
        assert norm == pytest.approx(1.0) and anomalous
        assert th.decide(np.nextafter(e["threshold"], -np.inf), c)[2] is False
    pooled = th.entry(None)
    assert pooled is th.entry(POOLED) and pooled["n_normal"] == 80
    with pytest.raises(ValueError, match="class 'c' has no threshold in this run; its classes: a, b"):
        th.entry("c")


def test_rechoose_from_saved_scores():
    normal, test, payload = make_payload()
    th = Thresholds(payload).rechoose("f1", 0.2)
    assert th.method == "f1" and th.fpr == 0.2
    e = th.entry("a")
    assert e["method"] == "f1" and e["threshold"] == e["f1_threshold"]
    assert e["fpr_threshold"] == threshold_at_fpr(normal["a"][0], 0.2)
    with pytest.raises(ValueError, match="threshold method 'best' is not one of"):
        Thresholds(payload).rechoose("best")


def test_tiny_held_out_sets_and_fallbacks_are_explained():
    rng = np.random.default_rng(2)
    normal = {"few": (list(rng.normal(1, 0.1, 4)), ["p"] * 4)}
    test = {"few": ([1.0, 1.1], [0, 0]), "no_heldout": ([1.0, 2.0], [0, 1])}
    th = Thresholds(build_thresholds(normal, test, method="fpr", fpr=0.01))
    few = th.entry("few")
    assert "only 4 held-out normal image(s)" in few["warning"] and "1/(n+1) = 20%" in few["warning"]
    assert few["threshold"] > max(normal["few"][0]) and few["f1_threshold"] is None  # no anomalies: no F1
    assert few["threshold"] - few["normal_level"] >= 0.01 * abs(few["threshold"]) - 1e-12  # scale never collapses
    fallback = th.entry("no_heldout")
    assert fallback["method"] == "f1" and "method 'fpr' is not available" in fallback["warning"]
    assert fallback["threshold"] == 2.0
    one = Thresholds(build_thresholds({"one": ([0.7], ["x"])}, None, fpr=0.01)).entry("one")
    assert one["normal_level"] < one["threshold"]  # one image: the median is the max, the floor keeps a scale


def test_the_few_normals_warning_names_the_fix_that_fits_where_the_normals_come_from():
    """Held-out images: hold out more (data.val_fraction). A dataset's own validation images (MVTec AD 2): the
    held-out fraction does nothing there, so the warning says to add images to validation/good instead."""
    normal = {"few": ([0.1, 0.2, 0.3], ["a", "b", "c"])}
    held_out = Thresholds(build_thresholds(normal, None, fpr=0.01)).entry("few")["warning"]
    own = Thresholds(build_thresholds(normal, None, fpr=0.01, normal_source=OWN_VALIDATION)).entry("few")["warning"]
    assert "only 3 held-out normal image(s)" in held_out and "data.val_fraction" in held_out
    assert "only 3 held-out normal image(s)" in own and "validation/good" in own and "val_fraction" not in own
    rechosen = Thresholds(build_thresholds(normal, None, fpr=0.01, normal_source=OWN_VALIDATION)).rechoose(fpr=0.02)
    assert "validation/good" in rechosen.entry("few")["warning"]  # the source is kept when re-choosing


def test_calibrate_model_warns_only_when_asked():
    """``note=False`` (what ``train(..., threshold_note=False)`` passes) keeps the warning in the file only."""
    import warnings
    from types import SimpleNamespace

    import pandas as pd

    from omniad_lite import presets
    from omniad_lite.errors import ThresholdWarning
    from omniad_lite.evaluation.calibration import calibrate_model

    cfg = presets.get("demo").with_overrides({"data.val_fraction": 0.0})  # thresholds from the test normals
    rows = pd.DataFrame({"cls_name": ["a"] * 4, "score": [0.1, 0.2, 0.9, 0.8], "label": [0, 0, 1, 1],
                         "path": ["w", "x", "y", "z"]})
    result = SimpleNamespace(per_image=rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet = calibrate_model(None, cfg, result, note=False, progress=True)
    assert not [w for w in caught if issubclass(w.category, ThresholdWarning)]
    assert quiet.entry("a")["warning"]  # 2 normals: warned, in the file
    with pytest.warns(ThresholdWarning, match="carry a warning"):
        loud = calibrate_model(None, cfg, result, progress=True)
    assert loud.payload == quiet.payload
