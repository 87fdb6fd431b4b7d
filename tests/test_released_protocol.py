"""Protocol "released" replays the released evaluation (github easyoo/Omni-AD ``util/metric.py``) exactly.

One hand-made case per difference from the exact "kit" definitions (D1 pixel F1 ``>`` and its epsilons, D2
AU-PRO integrated in threshold order, image labels from the masks, masks read as the released pipeline reads
them), and every released number of fixed maps against :func:`released_reference`, a literal loop over
binarised maps written from the released formulas (not from our implementation).
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import measure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from omniad_lite.data.images import load_mask
from omniad_lite.evaluation.metrics import METRIC_NAMES, compute_metrics
from omniad_lite.evaluation.stream import MetricAccumulator

EPS = 1e-8  # the released Evaluator's eps


def released_reference(maps: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """The released Evaluator on ``(N, H, W)`` float64 maps and 0/1 masks, one threshold at a time.

    Image score = max of the map, image label = max of the mask; sklearn for AUROC/AP; image F1-max the
    finite max of 2PR/(P+R) on sklearn's PR curve; pixel F1-max and AU-PRO as loops over binarised maps.
    """
    gt_sp, pr_sp = masks.max(axis=(1, 2)), maps.max(axis=(1, 2))
    p, r, _ = precision_recall_curve(gt_sp, pr_sp)
    with np.errstate(invalid="ignore"):
        f1 = 2 * p * r / (p + r)
    out = dict(image_auroc=roc_auc_score(gt_sp, pr_sp), image_ap=average_precision_score(gt_sp, pr_sp),
               image_f1max=np.max(f1[np.isfinite(f1)]), pixel_auroc=roc_auc_score(masks.ravel(), maps.ravel()),
               pixel_ap=average_precision_score(masks.ravel(), maps.ravel()))
    lo, hi = maps.min(), maps.max()
    gt = masks.astype(bool)
    f1s = []
    for score in np.arange(0.0, 1.0 + 1e-3, 0.05):
        predicted = (maps - lo) / (hi - lo) > score
        hits = np.logical_and(gt, predicted).sum()
        precision, recall = hits / (predicted.sum() + EPS), hits / (gt.sum() + EPS)
        f1s.append(2 * precision * recall / (precision + recall + EPS))
    out["pixel_f1max"] = max(f1s)
    pros, fprs = [], []
    for th in np.arange(lo, hi, (hi - lo) / 100):
        binary = maps > th
        overlaps = [binary[i][region.coords[:, 0], region.coords[:, 1]].sum() / region.area
                    for i, mask in enumerate(masks) for region in measure.regionprops(measure.label(mask))]
        pros.append(np.mean(overlaps))
        fprs.append(np.logical_and(1 - masks, binary).sum() / (1 - masks).sum())
    pros, fprs = np.array(pros), np.array(fprs)
    keep = fprs < 0.3
    with np.errstate(invalid="ignore"):  # all kept FPRs equal: 0 / 0, NaN as in the released code
        kept = (fprs[keep] - fprs[keep].min()) / (fprs[keep].max() - fprs[keep].min())
    out["pixel_aupro"] = auc(kept, pros[keep])  # sklearn integrates in the given (threshold) order
    out["mad"] = float(np.mean([out[k] for k in METRIC_NAMES]))
    return out


def fixed_maps(seed: int, levels: int | None = None, n: int = 10, size: int = 32):
    """Blob masks, gamma noise, defects brighter; ``levels`` quantises the maps (ties and FPR plateaus)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n // 2):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(3, size - 3, 2)
            ry, rx = rng.integers(1, 5, 2)
            masks[i] |= (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)
    maps = rng.gamma(2.0, 0.05, size=masks.shape) + masks * rng.random(masks.shape) * 0.4
    if levels:
        maps = np.round(maps * levels) / levels
    return maps, masks


@pytest.mark.parametrize("seed,levels", [(3, None), (4, 20), (5, 8)])
def test_released_numbers_match_the_literal_released_formulas(seed, levels):
    maps, masks = fixed_maps(seed, levels)
    labels = np.ones(len(maps), dtype=int)  # ignored by "released": it takes the labels from the masks
    ours = compute_metrics(maps.max(axis=(1, 2)), labels, maps, masks, protocol="released")
    ref = released_reference(maps, masks)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v, abs=1e-9), k


def d1_case():
    """Normalised map = raw map (lo 0, hi 1). Anomalous: 2 px at 1.0, 2 px at 0.5; normal: 4 px at 0.47, 8 at 0."""
    maps = np.zeros((1, 4, 4))
    masks = np.zeros((1, 4, 4), dtype=np.uint8)
    maps[0, 0, :2], maps[0, 0, 2:] = 1.0, 0.5
    masks[0, 0] = 1
    maps[0, 1] = 0.47
    return maps, masks


def test_d1_pixel_f1_counts_strictly_greater_and_adds_eps():
    maps, masks = d1_case()
    # ">=" at 0.5 would predict exactly the 4 anomalous pixels (F1 = 1, the kit's exact F1-max). With ">" the
    # best is P = 1, R = 1/2 at 0.5 or P = 1/2, R = 1 at 0.45: 2PR/(P+R) = 2/3 before the released epsilons.
    def f1(hits, predicted):
        p, r = hits / (predicted + EPS), hits / (4 + EPS)
        return 2 * p * r / (p + r + EPS)

    expected = max(f1(2, 2), f1(4, 8))
    released = compute_metrics([1.0], [1], maps, masks, protocol="released", allow_undefined=True)
    kit = compute_metrics([1.0], [1], maps, masks, protocol="kit", allow_undefined=True)
    assert released["pixel_f1max"] == pytest.approx(expected, abs=1e-15)
    with pytest.warns(UserWarning):  # sklearn: the reference's image AUROC of a single image is undefined
        assert released["pixel_f1max"] == pytest.approx(released_reference(maps, masks)["pixel_f1max"], abs=1e-15)
    assert kit["pixel_f1max"] == 1.0


def d2_case():
    """One 2×2 region scored 1.0, 0.705, 0.505, 0.0575; 96 normal pixels: 86 at 0, 10 at 0.055.

    Thresholds k/100: FPR = 10/96 for k <= 5, then 0 for k = 6..99 while PRO keeps falling (1, 0.75, 0.5,
    0.25). Rescaled FPR: 1 then 0. In threshold order the only segment of non-zero width joins k = 5
    (PRO 1) and k = 6 (PRO 0.75): area 0.875. Sorting the FPRs ascending joins k = 99 (PRO 0.25) to k = 0
    (PRO 1): 0.625.
    """
    maps = np.zeros((1, 10, 10))
    masks = np.zeros((1, 10, 10), dtype=np.uint8)
    masks[0, :2, :2] = 1
    maps[0, :2, :2] = [[1.0, 0.705], [0.505, 0.0575]]
    maps[0, 5] = 0.055
    return maps, masks


@pytest.mark.filterwarnings("ignore:Only one class is present")  # the reference's image AUROC of one image
def test_d2_aupro_is_integrated_in_threshold_order():
    maps, masks = d2_case()
    released = compute_metrics([1.0], [1], maps, masks, protocol="released", allow_undefined=True)
    assert released["pixel_aupro"] == pytest.approx(0.875, abs=1e-12)
    assert released_reference(maps, masks)["pixel_aupro"] == pytest.approx(0.875, abs=1e-12)
    kit = compute_metrics([1.0], [1], maps, masks, protocol="kit", allow_undefined=True)
    assert kit["pixel_aupro"] == pytest.approx(1.0)  # every anomalous pixel is above every normal one


def test_d2_streaming_accumulator_agrees():
    maps, masks = d2_case()
    acc = MetricAccumulator(protocol="released", allow_undefined=True)
    acc.update([1.0], [1], maps, masks)
    assert acc.compute()["pixel_aupro"] == pytest.approx(0.875, abs=1e-12)


def test_released_labels_come_from_the_masks():
    """An image labelled anomalous whose mask is empty counts as normal in the released image metrics."""
    maps, masks = fixed_maps(6)
    labels = masks.any(axis=(1, 2)).astype(int)
    labels[-1] = 1  # anomalous folder, but no anomalous pixel left after the resize
    scores = maps.max(axis=(1, 2))
    scores[-1] = scores.max() + 1.0  # the highest-scored image: a true positive by its label, a false one here
    released = compute_metrics(scores, labels, maps, masks, protocol="released")
    kit = compute_metrics(scores, labels, maps, masks, protocol="kit")
    from_masks = masks.any(axis=(1, 2))
    assert released["image_auroc"] == pytest.approx(roc_auc_score(from_masks, scores), abs=1e-12)
    assert kit["image_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert released["image_auroc"] < kit["image_auroc"]
    acc = MetricAccumulator(protocol="released")
    acc.update(scores, labels, maps, masks)
    assert acc.compute()["image_auroc"] == released["image_auroc"]


def test_masks_any_nonzero_pixel_is_anomalous():
    """MVTec's evaluation code and the released evaluator: mask != 0 is anomalous (not > 0.5)."""
    maps, masks = fixed_maps(7)
    soft = masks * 0.25  # e.g. 0/64 masks
    for protocol in ("kit", "released"):
        a = compute_metrics(maps.max(axis=(1, 2)), masks.any(axis=(1, 2)), maps, masks, protocol=protocol)
        b = compute_metrics(maps.max(axis=(1, 2)), masks.any(axis=(1, 2)), maps, soft, protocol=protocol)
        assert a == b


@pytest.mark.parametrize("size", [24, 64])
def test_load_mask_resizes_like_the_released_pipeline(tmp_path, size):
    """Reference: the released data pipeline with torchvision (mask > 0 → ×255 → Resize bilinear → ToTensor → > 0.5)."""
    from torchvision import transforms as T

    rng = np.random.default_rng(0)
    arr = np.zeros((45, 60), dtype=np.uint8)  # not square: a 60x45 mask
    arr[10:13, 5:40] = 1  # a 3-px bar (0/1 values, like VisA)
    arr[30, 10:50] = 1  # a 1-px line: thin structures vanish or survive depending on the filter
    arr[20:40, 45:58] = rng.integers(0, 2, size=(20, 13))  # speckle
    path = tmp_path / "mask.png"
    Image.fromarray(arr).save(path)
    pipeline = T.Compose([T.Resize((size, size), interpolation=T.InterpolationMode.BILINEAR),
                          T.CenterCrop((size, size)), T.ToTensor()])
    binary = Image.fromarray((np.array(Image.open(path).convert("L")) > 0).astype(np.uint8) * 255, mode="L")
    expected = (pipeline(binary)[0] > 0.5).numpy().astype(np.uint8)
    ours = load_mask(path, size)
    assert ours.dtype == np.uint8 and ours.shape == (size, size)
    np.testing.assert_array_equal(ours, expected)
    nearest = (np.asarray(binary.resize((size, size), Image.NEAREST)) > 0).astype(np.uint8)
    assert (nearest != expected).any()  # the case does tell the two resizes apart
