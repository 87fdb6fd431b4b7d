"""Anomaly-detection metrics, exact and fast, under an explicit protocol; the per-class table.

Seven numbers per class (SPEC "Evaluation protocol"; MambaAD/ADer tables, which Omni-AD reports): image
AUROC, AP, F1-max (from the image score) and pixel AUROC, AP, F1-max, AU-PRO; **mAD** = their mean.

Two protocols, named in every output:

``"kit"`` (default; exact definitions)
    * AUROC, AP: identical to ``sklearn.metrics.roc_auc_score`` / ``average_precision_score`` (ties counted
      as sklearn does: AUROC by the trapezoid = Mann–Whitney with ties ½; AP = Σ ΔRecall · Precision over
      all distinct thresholds).
    * F1-max: max over all distinct thresholds of ``2PR / (P + R)`` (the maximum of sklearn's PR curve).
    * AU-PRO: ground-truth regions are the 8-connected components of each mask (``scipy.ndimage.label``
      with a 3×3 structure); at a threshold ``t`` (pixel positive when ``score >= t``) PRO(t) is the mean
      over *all regions of all images* of the fraction of the region above ``t``, FPR(t) the fraction of
      all normal pixels (mask 0, in every image) above ``t``. The curve through all distinct thresholds,
      starting at (0, 0), is integrated with the trapezoid rule from FPR 0 to 0.3 (the curve interpolated
      linearly at 0.3) and divided by 0.3 — the MVTec-AD reference definition.
``"released"`` (what the released code / ADer's ``cal_pro_score`` compute, to compare with published tables)
    * image metrics, pixel AUROC and pixel AP: as "kit" (the released code calls sklearn on all pixels).
    * AU-PRO: ``lo, hi`` = min/max over all maps of the class; 100 thresholds ``th_k = lo + k (hi - lo)/100``,
      ``k = 0..99``; pixel positive when ``score > th_k``; PRO_k = mean region overlap, FPR_k as above; keep the
      thresholds with FPR_k < 0.3, min–max rescale those FPRs to [0, 1], area by the trapezoid rule
      (``sklearn.metrics.auc``). Undefined (NaN) when the kept FPRs are all equal (the released code divides
      0 by 0 there).
    * pixel F1-max: maps min–max normalised with the class's ``lo, hi``; F1 at the 21 thresholds
      ``0, 0.05, ..., 1`` (pixel positive when normalised score ``>=`` threshold); the max.

Speed: no per-threshold loops and no sklearn on the pixels. Normal-pixel scores are sorted once
(``np.sort`` on float32), anomalous ones (few) are arg-sorted with their region weights ``1 / |region|``;
every count above a threshold is then a ``searchsorted`` and every PRO a prefix sum, which makes all
metrics exact and lets an MVTec-sized test set (113 M pixels) be scored in seconds
(``benchmarks/bench_metrics.py``). For test sets that do not fit in memory, :class:`MetricAccumulator`
streams fixed-range histograms (``metrics_stream``-style, in this file).

Undefined metrics: a class with images of one label only has no image AUROC/AP/F1, and one without any
anomalous (or any normal) mask pixel has no pixel metrics. ``compute_metrics`` raises a ``ValueError``
saying so, or returns NaN for those entries (and for mAD) with ``allow_undefined=True`` — no warning.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

PROTOCOLS = ("kit", "released")
IMAGE_METRICS = ("image_auroc", "image_ap", "image_f1max")
PIXEL_METRICS = ("pixel_auroc", "pixel_ap", "pixel_f1max", "pixel_aupro")
METRIC_NAMES = IMAGE_METRICS + PIXEL_METRICS
AUPRO_FPR_LIMIT = 0.3  # integrate the PRO curve up to this FPR, then divide by it
RELEASED_PRO_STEPS = 100  # released protocol (SPEC): thresholds between the maps' min and max (cflow-ad used 200)
RELEASED_F1_THRESHOLDS = 21  # released protocol: pixel F1 at linspace(0, 1, 21) of the min-max normalised map
CONNECTIVITY_8 = np.ones((3, 3), dtype=bool)  # 8-connected ground-truth regions
TABLE_SCALE = 100.0  # tables show percentages, like the papers
TABLE_DECIMALS = 1


# ----------------------------------------------------------------------------------------------------------
# input checks
def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor on any device
        x = x.detach().cpu()
        x = x.float() if x.dtype.is_floating_point and x.element_size() < 4 else x
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    if x.dtype == object:
        raise ValueError(f"{name} must be a numeric array or tensor, got dtype object")
    return x


def _squeeze_channel(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]  # (N, 1, H, W) -> (N, H, W)
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W) or (N, 1, H, W), got {x.shape}")
    return x


def check_maps_masks(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert anomaly maps and ground-truth masks.

    Args:
        maps: ``(N, H, W)`` or ``(N, 1, H, W)`` real anomaly maps (numpy or torch).
        masks: same shape; pixels ``> 0.5`` are anomalous.

    Returns:
        ``(maps (N, H, W) float, masks (N, H, W) bool)``.
    """
    m = _squeeze_channel(_to_numpy(maps, "anomaly_maps"), "anomaly_maps")
    g = _squeeze_channel(_to_numpy(masks, "masks"), "masks")
    if m.shape != g.shape:
        raise ValueError(f"anomaly maps {m.shape} and masks {g.shape} differ in shape; resize the maps to the "
                         "mask size (or the masks to the map size) before computing metrics")
    if not np.issubdtype(m.dtype, np.floating):
        m = m.astype(np.float64)
    bad = ~np.isfinite(m).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"anomaly map of image index {int(np.flatnonzero(bad)[0])} contains NaN or inf "
                         f"({int(bad.sum())} bad map(s)); check the model's output for that image")
    return m, g > 0.5


def _check_image_inputs(scores, labels, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    s = _to_numpy(scores, "image_scores").astype(np.float64).ravel()
    y = _to_numpy(labels, "image_labels").ravel()
    if s.shape != y.shape or (n is not None and s.size != n):
        raise ValueError(f"image_scores ({s.size}), image_labels ({y.size})"
                         + (f" and anomaly maps ({n})" if n is not None else "") + " must have the same length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"image_labels must be 0 (normal) or 1 (anomalous), got values {np.unique(y)[:5]}")
    if not np.isfinite(s).all():
        raise ValueError(f"image score of image index {int(np.flatnonzero(~np.isfinite(s))[0])} is NaN or inf")
    return s, y.astype(bool)


# ----------------------------------------------------------------------------------------------------------
# exact curve metrics from sorted scores
def _distinct(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index of each run of equal values in a sorted array, and the run lengths."""
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    return starts, np.diff(np.r_[starts, sorted_values.size])


def _levels(pos_sorted: np.ndarray, neg_sorted: np.ndarray):
    """Distinct positive score levels (ascending): start index, count, and negatives below / tied."""
    starts, counts = _distinct(pos_sorted)
    values = pos_sorted[starts]
    neg_lt = np.searchsorted(neg_sorted, values, "left")  # negatives strictly below each level
    neg_eq = np.searchsorted(neg_sorted, values, "right") - neg_lt  # negatives tied with it
    return starts, counts, neg_lt, neg_eq


def _rank_metrics(pos_sorted: np.ndarray, neg_sorted: np.ndarray) -> tuple[float, float, float]:
    """Exact AUROC, AP and F1-max from ascending positive and negative scores (sklearn's tie rules)."""
    starts, counts, neg_lt, neg_eq = _levels(pos_sorted, neg_sorted)
    return rank_metrics_from_counts(counts, pos_sorted.size - starts, neg_lt, neg_eq, neg_sorted.size)


def rank_metrics_from_counts(counts, tp, neg_lt, neg_eq, n_neg: int) -> tuple[float, float, float]:
    """AUROC, AP, F1-max from the distinct positive score levels (ascending).

    Args:
        counts: positives at each level.
        tp: positives at or above each level.
        neg_lt: negatives strictly below each level.
        neg_eq: negatives tied with each level (counted ½ in AUROC, as the ROC trapezoid does).
        n_neg: number of negatives.
    """
    n_pos = float(np.sum(counts))
    auroc = float(np.sum(counts * (neg_lt + 0.5 * neg_eq))) / (n_pos * n_neg)
    tp = np.asarray(tp, dtype=np.float64)
    fp = (n_neg - np.asarray(neg_lt)).astype(np.float64)  # negatives >= level
    # AP and F1 only change where recall changes, i.e. at the positive levels (sklearn's sums agree).
    ap = float(np.sum(counts / n_pos * tp / (tp + fp)))
    f1max = float(np.max(2 * tp / (n_pos + tp + fp)))
    return auroc, ap, f1max


def aupro_from_levels(pro_gain, fpr_above, fpr_at_least, limit: float = AUPRO_FPR_LIMIT) -> float:
    """Area under the PRO curve up to FPR ``limit``, divided by ``limit``, summed level by level.

    The PRO curve (threshold decreasing) rises only at anomalous score levels. Level ``u`` adds ``pro_gain[u]``
    while FPR moves from ``fpr_above[u]`` (normal pixels ``> u``) to ``fpr_at_least[u]`` (``>= u``): a vertical
    step without tied normal pixels, a diagonal (the trapezoid between the two curve points) with them. Its
    share of the area left of ``limit`` is ``gain × ∫₀^limit clip((x - x0) / (x1 - x0), 0, 1) dx``, so summing
    over levels gives exactly the trapezoid integral of the curve through all distinct thresholds, with the
    curve interpolated linearly at ``limit`` — no loop over the (millions of) normal-pixel thresholds.
    """
    x0, x1 = np.asarray(fpr_above, np.float64), np.asarray(fpr_at_least, np.float64)
    width = x1 - x0
    after = np.clip(limit - x1, 0.0, None)  # full-gain part right of the segment
    inside = np.clip(np.minimum(limit, x1) - x0, 0.0, None)  # part of the segment left of the limit
    ramp = np.divide(inside ** 2, 2 * width, out=np.zeros_like(width), where=width > 0)
    return float(np.sum(np.asarray(pro_gain) * (after + ramp)) / limit)


class _PixelSets:
    """Sorted normal scores, sorted anomalous scores with PRO weights, for one class's maps."""

    def __init__(self, maps: np.ndarray, masks: np.ndarray):
        structure = np.zeros((3, 3, 3), dtype=bool)
        structure[1] = CONNECTIVITY_8  # 8-connected within an image, never across images
        regions, self.num_regions = ndimage.label(masks, structure=structure)  # (N, H, W) int
        self.neg = np.sort(maps[~masks], kind="quicksort")  # (num normal pixels,)
        pos = maps[masks]
        region_of_pos = regions[masks]
        sizes = np.bincount(region_of_pos, minlength=self.num_regions + 1)
        order = np.argsort(pos, kind="stable")
        self.pos = pos[order]  # (num anomalous pixels,)
        weights = 1.0 / sizes[region_of_pos[order]]  # each region sums to 1
        self.prefix = np.r_[0.0, np.cumsum(weights)]  # prefix[i] = weight of the i lowest anomalous pixels
        self.lo = float(min(self.neg[0] if self.neg.size else np.inf, self.pos[0] if self.pos.size else np.inf))
        self.hi = float(max(self.neg[-1] if self.neg.size else -np.inf, self.pos[-1] if self.pos.size else -np.inf))

    def pro_at_least(self, t: np.ndarray, side: str) -> np.ndarray:
        """PRO for thresholds ``t``: ``side='left'`` counts scores ``>= t``, ``'right'`` counts ``> t``."""
        return (self.prefix[-1] - self.prefix[np.searchsorted(self.pos, t, side)]) / self.num_regions

    def kit_aupro(self) -> float:
        starts, counts, neg_lt, neg_eq = _levels(self.pos, self.neg)
        gain = (self.prefix[starts + counts] - self.prefix[starts]) / self.num_regions  # PRO added per level
        n_neg = self.neg.size
        return aupro_from_levels(gain, (n_neg - neg_lt - neg_eq) / n_neg, (n_neg - neg_lt) / n_neg)

    def released_aupro(self) -> float:
        ths = self.lo + (self.hi - self.lo) / RELEASED_PRO_STEPS * np.arange(RELEASED_PRO_STEPS)
        fpr = (self.neg.size - np.searchsorted(self.neg, ths, "right")) / self.neg.size  # score > th
        return released_pro_area(fpr, self.pro_at_least(ths, "right"))

    def released_f1max(self) -> float:
        ths = self.lo + np.linspace(0.0, 1.0, RELEASED_F1_THRESHOLDS) * (self.hi - self.lo)
        tp = (self.pos.size - np.searchsorted(self.pos, ths, "left")).astype(np.float64)  # score >= th
        fp = (self.neg.size - np.searchsorted(self.neg, ths, "left")).astype(np.float64)
        return float(np.max(2 * tp / (self.pos.size + tp + fp)))


def pro_fpr_at(maps: np.ndarray, masks: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and PRO at each threshold (a pixel counts when its score is ``>= t``), for plotting PRO curves.

    Same regions and weights as the kit AU-PRO (8-connected components, PRO = mean overlap over all regions).

    Args:
        maps: ``(N, H, W)`` anomaly maps.
        masks: ``(N, H, W)`` boolean ground truth with both normal and anomalous pixels.
        thresholds: the thresholds, any order.

    Returns:
        ``(fpr, pro)``, each shaped like ``thresholds``.
    """
    sets = _PixelSets(maps, masks)
    t = np.asarray(thresholds, dtype=np.float64)
    fpr = (sets.neg.size - np.searchsorted(sets.neg, t, "left")) / sets.neg.size
    return fpr, sets.pro_at_least(t, "left")


def released_pro_area(fpr: np.ndarray, pro: np.ndarray) -> float:
    """ADer/cflow-ad ``cal_pro_score`` tail: keep FPR < 0.3, min-max rescale FPR, trapezoid area."""
    keep = fpr < AUPRO_FPR_LIMIT
    f, p = fpr[keep], pro[keep]
    if f.size < 2 or f.max() == f.min():
        return float("nan")
    f = (f - f.min()) / (f.max() - f.min())
    order = np.argsort(f, kind="stable")  # thresholds ascend → FPR descends; integrate left to right
    return float(np.trapezoid(p[order], f[order]))


# ----------------------------------------------------------------------------------------------------------
# public API
def _undefined(what: str, allow_undefined: bool) -> None:
    if not allow_undefined:
        raise ValueError(f"{what}; pass allow_undefined=True to get NaN for these metrics instead")


def image_metrics(scores: np.ndarray, labels: np.ndarray, allow_undefined: bool = False) -> dict[str, float]:
    """Exact image AUROC, AP and F1-max (sklearn definitions); NaN/raise when one label is missing."""
    pos, neg = np.sort(scores[labels]), np.sort(scores[~labels])
    if pos.size == 0 or neg.size == 0:
        _undefined(f"image metrics are undefined: all {scores.size} images are "
                   f"{'anomalous' if neg.size == 0 else 'normal'}; AUROC/AP/F1-max need both kinds", allow_undefined)
        return dict.fromkeys(IMAGE_METRICS, float("nan"))
    return dict(zip(IMAGE_METRICS, _rank_metrics(pos, neg)))


def compute_metrics(image_scores, image_labels, anomaly_maps, masks, protocol: str = "kit", *,
                    allow_undefined: bool = False) -> dict[str, float]:
    """The seven metrics and mAD for one class (fractions in [0, 1]).

    Args:
        image_scores: ``(N,)`` image anomaly scores (e.g. the max of each map).
        image_labels: ``(N,)`` 0 = normal, 1 = anomalous.
        anomaly_maps: ``(N, H, W)`` (or ``(N, 1, H, W)``) anomaly maps, numpy or torch.
        masks: ground-truth masks of the same shape; ``> 0.5`` is anomalous.
        protocol: ``"kit"`` (exact) or ``"released"`` (the released code's AU-PRO and pixel F1-max);
            see the module docstring for the precise definitions.
        allow_undefined: return NaN for metrics a class cannot define (see module docstring) instead of
            raising a ``ValueError``.

    Returns:
        dict with ``image_auroc, image_ap, image_f1max, pixel_auroc, pixel_ap, pixel_f1max, pixel_aupro, mad``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: choose one of {PROTOCOLS}")
    maps, gt = check_maps_masks(anomaly_maps, masks)
    scores, labels = _check_image_inputs(image_scores, image_labels, n=maps.shape[0])
    out = image_metrics(scores, labels, allow_undefined)
    out.update(_pixel_metrics(maps, gt, protocol, allow_undefined))
    out["mad"] = float(np.mean([out[k] for k in METRIC_NAMES]))
    return out


def _pixel_metrics(maps: np.ndarray, gt: np.ndarray, protocol: str, allow_undefined: bool) -> dict[str, float]:
    n_pos = int(gt.sum())
    if n_pos == 0 or n_pos == gt.size:
        _undefined(f"pixel metrics are undefined: the masks of these {gt.shape[0]} images have "
                   f"{'no anomalous' if n_pos == 0 else 'only anomalous'} pixels", allow_undefined)
        return dict.fromkeys(PIXEL_METRICS, float("nan"))
    sets = _PixelSets(maps, gt)
    auroc, ap, f1max = _rank_metrics(sets.pos, sets.neg)
    if protocol == "released":
        return dict(pixel_auroc=auroc, pixel_ap=ap, pixel_f1max=sets.released_f1max(),
                    pixel_aupro=sets.released_aupro())
    return dict(pixel_auroc=auroc, pixel_ap=ap, pixel_f1max=f1max, pixel_aupro=sets.kit_aupro())


def metrics_table(per_class: dict[str, dict[str, float]], *, protocol: str | None = None,
                  rounded: bool = True) -> pd.DataFrame:
    """One row per class plus a ``mean`` row; columns the 7 metrics and ``mad``; in percent.

    Args:
        per_class: ``{class_name: compute_metrics(...) result}`` (fractions).
        protocol: protocol the numbers were computed with; stored in ``df.attrs["protocol"]``.
        rounded: round to one decimal like the papers (``False``: full precision, still ×100).

    Returns:
        ``pandas.DataFrame`` indexed by class name (the ``mean`` row last; it averages unrounded values).
    """
    if not per_class:
        raise ValueError("metrics_table needs at least one class")
    cols = list(METRIC_NAMES) + ["mad"]
    df = pd.DataFrame.from_dict({c: {k: float(m[k]) for k in cols} for c, m in per_class.items()},
                                orient="index")[cols] * TABLE_SCALE
    df.loc["mean"] = df.mean(axis=0, skipna=False)
    df.index.name = "class"
    if rounded:
        df = df.round(TABLE_DECIMALS)
    df.attrs["protocol"] = protocol
    df.attrs["scale"] = "percent"
    return df


def save_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a :func:`metrics_table` to ``.json`` (with the protocol) or ``.csv`` (a ``protocol`` column).

    Args:
        df: the table.
        path: output file; the suffix picks the format.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    protocol = df.attrs.get("protocol")
    if path.suffix == ".json":
        rows = {str(c): {k: (None if pd.isna(v) else float(v)) for k, v in r.items()} for c, r in df.iterrows()}
        path.write_text(json.dumps({"protocol": protocol, "scale": df.attrs.get("scale", "percent"),
                                    "classes": rows}, indent=2) + "\n")
    elif path.suffix == ".csv":
        df.assign(protocol=protocol).to_csv(path)
    else:
        raise ValueError(f"{path}: save_table writes .json or .csv, not {path.suffix!r}")
    return path


def __getattr__(name: str):
    # MetricAccumulator lives in metrics_stream.py (which imports this module); re-exported lazily here.
    if name == "MetricAccumulator":
        from .metrics_stream import MetricAccumulator
        return MetricAccumulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PROTOCOLS", "METRIC_NAMES", "MetricAccumulator", "check_maps_masks", "compute_metrics", "pro_fpr_at",
           "image_metrics", "metrics_table", "save_table"]
