"""omniad_lite.metrics against scikit-learn, hand-computed AU-PRO values, naive per-threshold loops and adeval.

The released protocol's own tests are in tests/test_released_protocol.py.
"""
import json

import numpy as np
import pandas as pd
import pytest
from skimage import measure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from omniad_lite.evaluation.metric_tables import metrics_table, save_table
from omniad_lite.evaluation.metrics import IMAGE_METRICS, METRIC_NAMES, compute_metrics
from omniad_lite.evaluation.stream import MetricAccumulator


def make_data(seed=0, n=16, size=48, levels=None, dtype=np.float32):
    """Maps with several blob regions per anomalous image; ``levels`` quantises the maps to force ties."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n // 2):
        for _ in range(rng.integers(1, 5)):
            cy, cx = rng.integers(4, size - 4, 2)
            ry, rx = rng.integers(1, 6, 2)
            masks[i] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    maps = rng.gamma(2.0, 0.05, size=masks.shape) + masks * rng.random(masks.shape) * 0.3
    if levels:
        maps = np.round(maps * levels) / levels
    labels = masks.any(axis=(1, 2)).astype(int)
    labels[-1] = 1  # an anomalous image whose defect is too small to show in the mask
    return maps.max(axis=(1, 2)).astype(dtype), labels, maps.astype(dtype), masks


def sk_f1max(y, s):
    p, r, _ = precision_recall_curve(y, s)
    return np.max(np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0))


def naive_kit_aupro(maps, masks, limit=0.3):
    """Per-threshold loop over every distinct score, skimage 8-connected regions, truncated trapezoid."""
    regions = [(i, lab == k) for i, m in enumerate(masks)
               for lab in [measure.label(m, connectivity=2)] for k in range(1, lab.max() + 1)]
    normal = ~masks
    fprs, pros = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        binary = maps >= t
        fprs.append((binary & normal).sum() / normal.sum())
        pros.append(np.mean([binary[i][r].mean() for i, r in regions]))
    fprs, pros = np.array(fprs), np.array(pros)
    i = np.searchsorted(fprs, limit, side="right")  # fprs is non-decreasing
    y_lim = np.interp(limit, fprs[i - 1:i + 1], pros[i - 1:i + 1]) if fprs[i - 1] < limit else pros[i - 1]
    x, y = np.r_[fprs[:i], limit], np.r_[pros[:i], y_lim]
    return np.trapezoid(y, x) / limit


@pytest.mark.parametrize("levels,dtype,size", [(None, np.float32, 24), (40, np.float32, 48), (25, np.float64, 48)])
def test_kit_matches_sklearn_and_naive_loop(levels, dtype, size):
    scores, labels, maps, masks = make_data(levels=levels, dtype=dtype, size=size)
    scores = np.round(scores, 1)  # ties in image scores too
    m = compute_metrics(scores, labels, maps, masks)
    y, s = masks.ravel(), maps.ravel()
    expected = dict(image_auroc=roc_auc_score(labels, scores), image_ap=average_precision_score(labels, scores),
                    image_f1max=sk_f1max(labels, scores), pixel_auroc=roc_auc_score(y, s),
                    pixel_ap=average_precision_score(y, s), pixel_f1max=sk_f1max(y, s),
                    pixel_aupro=naive_kit_aupro(maps, masks))
    for k, v in expected.items():
        assert m[k] == pytest.approx(v, abs=1e-6), k
    assert m["mad"] == pytest.approx(np.mean([expected[k] for k in METRIC_NAMES]), abs=1e-6)


def test_aupro_hand_computed_two_regions_one_half_detected():
    # image 0: region A (4 px) scored 0.9 → fully detected at t = 0.9
    # image 1: region B (2 px): one pixel 0.9, one 0.05 → half detected at t = 0.9
    # normal pixels: half at 0.5, half at 0.0.  PRO(0.9) = (1 + 0.5) / 2 = 0.75 at FPR 0, and stays 0.75
    # until FPR 0.5 (t = 0.5) → AU-PRO(0.3) = 0.75 (a pixel-weighted overlap would give 5/6).
    maps = np.zeros((2, 10, 10), np.float32)
    masks = np.zeros((2, 10, 10), bool)
    masks[0, 2:4, 2:4] = True
    maps[0, 2:4, 2:4] = 0.9
    masks[1, 5, 5:7] = True
    maps[1, 5, 5] = 0.9
    maps[1, 5, 6] = 0.05
    normal = np.flatnonzero(~masks.ravel())
    maps.ravel()[normal[: normal.size // 2]] = 0.5
    m = compute_metrics(maps.max(axis=(1, 2)), [1, 1], maps, masks, allow_undefined=True)
    assert m["pixel_aupro"] == pytest.approx(0.75, abs=1e-12)
    assert np.isnan(m["image_auroc"]) and np.isnan(m["mad"])  # only anomalous images: defined as NaN here


def test_aupro_uses_8_connectivity_and_interpolates_at_limit():
    # p1, p2 are 4-connected, p3 touches p2 diagonally: one 8-connected region of 3 px; only p3 is detected.
    # Curve: (0, 0) → (0, 1/3) at t = 1, then a tie diagonal to (1, 1) at t = 0: PRO(0.3) = 1/3 + 0.3·2/3.
    maps = np.zeros((1, 6, 6), np.float32)
    masks = np.zeros((1, 6, 6), bool)
    masks[0, 1, 1] = masks[0, 1, 2] = masks[0, 2, 3] = True
    maps[0, 2, 3] = 1.0
    m = compute_metrics([1.0, 0.0], [1, 0], np.r_[maps, np.zeros_like(maps)], np.r_[masks, np.zeros_like(masks)])
    expected = (1 / 3 + (1 / 3 + 0.3 * 2 / 3)) / 2  # trapezoid area / 0.3
    assert m["pixel_aupro"] == pytest.approx(expected, abs=1e-12)  # 4-connected regions would give 0.6


def test_released_shares_the_kit_rank_metrics():
    """Protocol "released" (tests/test_released_protocol.py) differs only in pixel F1-max, AU-PRO, labels."""
    scores, labels, maps, masks = make_data(seed=3, n=10)
    labels = masks.any(axis=(1, 2)).astype(int)  # the released code's labels: from the masks
    m = compute_metrics(scores, labels, maps, masks, protocol="released")
    kit = compute_metrics(scores, labels, maps, masks, protocol="kit")
    for k in ("image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap"):
        assert m[k] == kit[k]


def test_kit_aupro_matches_adeval_reference():
    from adeval.au_pro import calculate_au_pro

    _, _, maps, masks = make_data(seed=5, n=8, size=40, dtype=np.float64)
    ours = compute_metrics(maps.max(axis=(1, 2)), [1] * 4 + [0] * 4, maps, masks)["pixel_aupro"]
    # adeval's MVTec-AD reference samples the curve at normal-pixel quantiles: use one per normal pixel.
    ref, _ = calculate_au_pro(list(masks.astype(int)), list(maps), num_thresholds=int((~masks).sum()))
    assert ours == pytest.approx(ref, abs=2e-4)  # measured difference ~5e-5 (its curve joins sampled points)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # adeval's empty bins
def test_pixel_metrics_match_adeval_binned(monkeypatch):
    import adeval

    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)  # adeval calls np.trapz (gone in NumPy 2.4)
    scores, labels, maps, masks = make_data(seed=7, n=12)
    ours = compute_metrics(scores, labels, maps, masks)
    ev = adeval.EvalAccumulator(float(maps.min()), float(maps.max()), float(maps.min()), float(maps.max()))
    for s, lab, mp, mk in zip(scores, labels, maps, masks):
        ev.add_anomap(mp, mk.astype(np.uint8))
        ev.add_image(np.array([s]), np.array([lab]))
    ref = ev.summary()
    # adeval bins the scores (and its "aupr" is a trapezoid area, not AP): close, not equal
    assert ours["pixel_auroc"] == pytest.approx(ref["p_auroc"], abs=1e-4)
    assert ours["pixel_aupro"] == pytest.approx(ref["p_aupro"], abs=5e-4)


@pytest.mark.parametrize("protocol", ["kit", "released"])
def test_accumulator_close_to_exact(protocol):
    scores, labels, maps, masks = make_data(seed=11, n=20)
    exact = compute_metrics(scores, labels, maps, masks, protocol=protocol)
    acc = MetricAccumulator(protocol=protocol)
    for i in range(0, 20, 3):  # uneven batches
        acc.update(scores[i:i + 3], labels[i:i + 3], maps[i:i + 3, None], masks[i:i + 3, None])
    assert acc.nbytes == MetricAccumulator(protocol=protocol).nbytes  # no growth with the images added
    approx = acc.compute()
    for k in IMAGE_METRICS:
        assert approx[k] == exact[k]
    assert approx["pixel_auroc"] == pytest.approx(exact["pixel_auroc"], abs=1e-4)
    assert approx["pixel_ap"] == pytest.approx(exact["pixel_ap"], abs=1e-4)
    assert approx["pixel_aupro"] == pytest.approx(exact["pixel_aupro"], abs=1e-3)
    assert approx["pixel_f1max"] == pytest.approx(exact["pixel_f1max"], abs=1e-3)
    small = MetricAccumulator(protocol=protocol, num_bins=1024)
    assert small.num_bins <= 1024 and small.nbytes == 3 * 8 * small.num_bins  # memory set by num_bins only


def test_only_normal_images_error_or_nan():
    scores, _, maps, _ = make_data(seed=1, n=4)
    masks = np.zeros_like(maps, dtype=bool)
    with pytest.raises(ValueError, match="all 4 images are normal"):
        compute_metrics(scores, [0, 0, 0, 0], maps, masks)
    m = compute_metrics(scores, [0, 0, 0, 0], maps, masks, allow_undefined=True)
    assert all(np.isnan(m[k]) for k in m)
    acc = MetricAccumulator(allow_undefined=False)
    acc.update(scores, [0, 0, 0, 0], maps, masks)
    with pytest.raises(ValueError, match="undefined"):
        acc.compute()


def test_all_equal_scores_are_defined():
    masks = np.zeros((4, 8, 8), bool)
    masks[0, :2, :2] = True
    maps = np.full((4, 8, 8), 0.3, np.float32)
    m = compute_metrics(np.full(4, 0.3), [1, 0, 0, 1], maps, masks)
    assert m["image_auroc"] == 0.5 and m["pixel_auroc"] == 0.5
    assert m["image_ap"] == pytest.approx(0.5) and m["pixel_ap"] == pytest.approx(4 / 256)
    assert m["pixel_aupro"] == pytest.approx(0.15)  # the diagonal (0,0)→(1,1): area 0.045 / 0.3
    assert np.isnan(compute_metrics(np.full(4, 0.3), [1, 0, 0, 1], maps, masks, protocol="released")["pixel_aupro"])


def test_input_errors_name_the_problem():
    scores, labels, maps, masks = make_data(n=4, size=16)
    with pytest.raises(ValueError, match=r"\(4, 16, 16\).*\(4, 8, 8\)"):
        compute_metrics(scores, labels, maps, masks[:, :8, :8])
    bad = maps.copy()
    bad[2, 3, 3] = np.nan
    with pytest.raises(ValueError, match="image index 2"):
        compute_metrics(scores, labels, bad, masks)
    acc = MetricAccumulator()
    acc.update(scores[:2], labels[:2], maps[:2], masks[:2])
    with pytest.raises(ValueError, match="image index 4"):  # counted over the whole stream
        acc.update(scores, labels, bad, masks)
    with pytest.raises(ValueError, match="score_range"):
        MetricAccumulator().update(scores, labels, maps + 5, masks)
    with pytest.raises(ValueError, match="protocol"):
        compute_metrics(scores, labels, maps, masks, protocol="paper")
    with pytest.raises(ValueError, match="same length"):
        compute_metrics(scores[:3], labels[:3], maps, masks)


def test_metrics_table_and_export(tmp_path):
    a = compute_metrics(*make_data(seed=1, n=8))
    b = compute_metrics(*make_data(seed=2, n=8))
    df = metrics_table({"bottle": a, "cable": b}, protocol="kit")
    assert list(df.index) == ["bottle", "cable", "mean"]
    assert list(df.columns) == list(METRIC_NAMES) + ["mad"]
    assert df.attrs["protocol"] == "kit"
    assert df.loc["bottle", "pixel_auroc"] == round(a["pixel_auroc"] * 100, 1)
    raw = metrics_table({"bottle": a, "cable": b}, rounded=False)
    assert raw.loc["mean", "mad"] == pytest.approx(50 * (a["mad"] + b["mad"]))
    js = json.loads(save_table(df, tmp_path / "m.json").read_text())
    assert js["protocol"] == "kit" and js["classes"]["mean"]["mad"] == df.loc["mean", "mad"]
    csv = pd.read_csv(save_table(df, tmp_path / "m.csv"), index_col=0)
    assert (csv["protocol"] == "kit").all() and csv.loc["cable", "image_ap"] == df.loc["cable", "image_ap"]
    with pytest.raises(ValueError, match=".xlsx"):
        save_table(df, tmp_path / "m.xlsx")


def test_images_without_masks_enter_image_metrics_only():
    """pixel_valid=False (an anomalous image with no mask): image metrics over all images (= sklearn), pixel
    metrics over the others (= the metrics of that subset), exact and streaming; none known → NaN."""
    scores, labels, maps, masks = make_data(seed=3)
    valid = np.ones(len(labels), bool)
    valid[np.flatnonzero(labels)[:2]] = False  # two anomalous images lost their masks
    out = compute_metrics(scores, labels, maps, masks, pixel_valid=valid)
    assert out["image_auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert out["image_ap"] == pytest.approx(average_precision_score(labels, scores))
    subset = compute_metrics(scores[valid], labels[valid], maps[valid], masks[valid])
    for m in ("pixel_auroc", "pixel_ap", "pixel_f1max", "pixel_aupro"):
        assert out[m] == pytest.approx(subset[m])
    acc = MetricAccumulator(allow_undefined=True)
    acc.update(scores[:8], labels[:8], maps[:8], masks[:8], pixel_valid=valid[:8])
    acc.update(scores[8:], labels[8:], maps[8:], masks[8:], pixel_valid=valid[8:])
    streamed = acc.compute()
    assert streamed["image_auroc"] == pytest.approx(out["image_auroc"])
    assert streamed["pixel_auroc"] == pytest.approx(out["pixel_auroc"], abs=1e-4)
    none_known = labels == 0
    undefined = compute_metrics(scores, labels, maps, masks, pixel_valid=none_known, allow_undefined=True)
    assert np.isnan(undefined["pixel_auroc"]) and np.isnan(undefined["mad"])
    assert undefined["image_auroc"] == pytest.approx(out["image_auroc"])
    with pytest.raises(ValueError, match="pixel_valid has 3 entries for 16 images"):
        compute_metrics(scores, labels, maps, masks, pixel_valid=[True] * 3)
