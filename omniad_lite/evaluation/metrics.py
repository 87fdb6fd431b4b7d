"""Anomaly-detection metrics, exact and fast, under an explicit protocol; the per-class table.

Seven numbers per class (docs/method.md, "Evaluation protocol"; MambaAD/ADer tables, which Omni-AD reports): image
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
``"released"`` (the released evaluation replayed exactly, to compare with published tables; :mod:`.released`)
    * image labels: an image is anomalous when its mask has an anomalous pixel (the released code's
      ``gt_sp = gt_px.max(axis=(1, 2))``), whatever ``image_labels`` says; image AUROC/AP/F1-max, pixel AUROC
      and pixel AP as "kit" (the released code calls sklearn on them).
    * AU-PRO: ``lo, hi`` = min/max over all maps of the class; thresholds ``np.arange(lo, hi, (hi - lo)/100)``;
      pixel positive when ``score > th``; PRO and FPR as above; keep the thresholds with FPR < 0.3, min–max
      rescale those FPRs to [0, 1], area by ``sklearn.metrics.auc`` over the points in threshold order.
      Undefined (NaN) when the kept FPRs are all equal (the released code divides 0 by 0 there).
    * pixel F1-max: maps min–max normalised with the class's ``lo, hi``; at the 21 scores ``0, 0.05, ..., 1``
      a pixel is positive when its normalised value is ``>`` the score; ``F1 = 2PR / (P + R + 1e-8)`` with
      ``1e-8`` also added to both denominators of P and R; the max.

Masks: any non-zero mask pixel is anomalous (as the MVTec-AD evaluation code and the released evaluator read
them). The datasets' masks are already binary at the model's input size: :mod:`omniad_lite.data.images`
resizes them as the released data pipeline does (bilinear, then ``> 0.5``).

Speed: no per-threshold loops and no sklearn on the pixels. Normal-pixel scores are sorted once
(``np.sort`` on float32), anomalous ones (few) are arg-sorted with their region weights ``1 / |region|``;
every count above a threshold is then a ``searchsorted`` and every PRO a prefix sum, which makes all
metrics exact and lets an MVTec-sized test set (113 M pixels) be scored in seconds
(``benchmarks/bench_metrics.py``). For test sets that do not fit in memory, :class:`MetricAccumulator`
streams fixed-range histograms (:mod:`.stream`).

Undefined metrics: a class with images of one label only has no image AUROC/AP/F1, and one without any
anomalous (or any normal) mask pixel has no pixel metrics. ``compute_metrics`` raises a ``ValueError``
saying so, or returns NaN for those entries (and for mAD) with ``allow_undefined=True`` — no warning.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .curve_metrics import PixelSets, rank_metrics

PROTOCOLS = ("kit", "released")
IMAGE_METRICS = ("image_auroc", "image_ap", "image_f1max")
PIXEL_METRICS = ("pixel_auroc", "pixel_ap", "pixel_f1max", "pixel_aupro")
METRIC_NAMES = IMAGE_METRICS + PIXEL_METRICS


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor on any device
        x = x.detach().cpu()
        x = x.float() if x.dtype.is_floating_point and x.element_size() < 4 else x
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    if x.dtype == object:
        raise InputError(f"{name} must be a numeric array or tensor, got dtype object")
    return x


def _squeeze_channel(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]  # (N, 1, H, W) -> (N, H, W)
    if x.ndim != 3:
        raise InputError(f"{name} must have shape (N, H, W) or (N, 1, H, W), got {x.shape}")
    return x


def check_maps_masks(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert anomaly maps and ground-truth masks.

    Args:
        maps: ``(N, H, W)`` or ``(N, 1, H, W)`` real anomaly maps (numpy or torch).
        masks: same shape; any non-zero pixel is anomalous.

    Returns:
        ``(maps (N, H, W) float, masks (N, H, W) bool)``.
    """
    m = _squeeze_channel(_to_numpy(maps, "anomaly_maps"), "anomaly_maps")
    g = _squeeze_channel(_to_numpy(masks, "masks"), "masks")
    if m.shape != g.shape:
        raise InputError(f"anomaly maps {m.shape} and masks {g.shape} differ in shape; resize the maps to the "
                         "mask size (or the masks to the map size) before computing metrics")
    if not np.issubdtype(m.dtype, np.floating):
        m = m.astype(np.float64)
    bad = ~np.isfinite(m).all(axis=(1, 2))
    if bad.any():
        raise InputError(f"anomaly map of image index {int(np.flatnonzero(bad)[0])} contains NaN or inf "
                         f"({int(bad.sum())} bad map(s)); check the model's output for that image")
    return m, g != 0


def check_image_inputs(scores, labels, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    s = _to_numpy(scores, "image_scores").astype(np.float64).ravel()
    y = _to_numpy(labels, "image_labels").ravel()
    if s.shape != y.shape or (n is not None and s.size != n):
        raise InputError(f"image_scores ({s.size}), image_labels ({y.size})"
                         + (f" and anomaly maps ({n})" if n is not None else "") + " must have the same length")
    if not np.isin(y, (0, 1)).all():
        raise InputError(f"image_labels must be 0 (normal) or 1 (anomalous), got values {np.unique(y)[:5]}")
    if not np.isfinite(s).all():
        raise InputError(f"image score of image index {int(np.flatnonzero(~np.isfinite(s))[0])} is NaN or inf")
    return s, y.astype(bool)


def undefined(what: str, allow_undefined: bool) -> None:
    if not allow_undefined:
        raise InputError(f"{what}; pass allow_undefined=True to get NaN for these metrics instead")


def released_labels(gt: np.ndarray) -> np.ndarray:
    """Protocol ``"released"``: an image is anomalous when its ``(H, W)`` mask has an anomalous pixel."""
    return gt.reshape(gt.shape[0], -1).any(axis=1)  # (N,)


def image_metrics(scores: np.ndarray, labels: np.ndarray, allow_undefined: bool = False,
                  protocol: str = "kit") -> dict[str, float]:
    """Exact image AUROC, AP and F1-max (sklearn definitions); NaN/raise when one label is missing."""
    pos, neg = np.sort(scores[labels]), np.sort(scores[~labels])
    if pos.size == 0 or neg.size == 0:
        hint = (" (protocol 'released' takes the labels from the masks, as the released code does: use "
                "protocol='kit' for data without masks)" if protocol == "released" and neg.size else "")
        undefined(f"image metrics are undefined: all {scores.size} images are "
                  f"{'anomalous' if neg.size == 0 else 'normal'}; AUROC/AP/F1-max need both kinds{hint}",
                  allow_undefined)
        return dict.fromkeys(IMAGE_METRICS, float("nan"))
    return dict(zip(IMAGE_METRICS, rank_metrics(pos, neg)))


def compute_metrics(image_scores, image_labels, anomaly_maps, masks, protocol: str = "kit", *,
                    allow_undefined: bool = False, pixel_valid=None) -> dict[str, float]:
    """The seven metrics and mAD for one class (fractions in [0, 1]).

    Args:
        image_scores: ``(N,)`` image anomaly scores (e.g. the max of each map).
        image_labels: ``(N,)`` 0 = normal, 1 = anomalous.
        anomaly_maps: ``(N, H, W)`` (or ``(N, 1, H, W)``) anomaly maps, numpy or torch.
        masks: ground-truth masks of the same shape; any non-zero pixel is anomalous.
        protocol: ``"kit"`` (exact) or ``"released"`` (the released code's image labels from the masks,
            AU-PRO and pixel F1-max); see the module docstring for the precise definitions.
        allow_undefined: return NaN for metrics a class cannot define (see module docstring) instead of
            raising a ``ValueError``.
        pixel_valid: optional ``(N,)`` booleans: images whose mask is known. The pixel metrics use only
            these (an anomalous image without a mask has an unknown, not an empty, mask); the image metrics
            use every image. ``None``: all masks are known.

    Returns:
        dict with ``image_auroc, image_ap, image_f1max, pixel_auroc, pixel_ap, pixel_f1max, pixel_aupro, mad``.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol={protocol!r}: choose one of {PROTOCOLS}")
    maps, gt = check_maps_masks(anomaly_maps, masks)
    scores, labels = check_image_inputs(image_scores, image_labels, n=maps.shape[0])
    keep = valid_images(pixel_valid, maps.shape[0])
    if protocol == "released":  # labels from the masks where a mask is known
        labels = np.where(keep, released_labels(gt), labels)
    out = image_metrics(scores, labels, allow_undefined, protocol)
    out.update(_pixel_metrics(maps[keep], gt[keep], protocol, allow_undefined))
    out["mad"] = float(np.mean([out[k] for k in METRIC_NAMES]))
    return out


def valid_images(pixel_valid, n: int) -> np.ndarray:
    """``pixel_valid`` as ``(n,)`` booleans (all True for ``None``); a wrong length raises."""
    if pixel_valid is None:
        return np.ones(n, dtype=bool)
    keep = np.asarray(pixel_valid, dtype=bool).ravel()
    if keep.size != n:
        raise InputError(f"pixel_valid has {keep.size} entries for {n} images; give one per image")
    return keep


def _pixel_metrics(maps: np.ndarray, gt: np.ndarray, protocol: str, allow_undefined: bool) -> dict[str, float]:
    n_pos = int(gt.sum())
    if n_pos == 0 or n_pos == gt.size:  # also: no image with a known mask
        undefined(f"pixel metrics are undefined: the masks of these {gt.shape[0]} images have "
                   f"{'no anomalous' if n_pos == 0 else 'only anomalous'} pixels", allow_undefined)
        return dict.fromkeys(PIXEL_METRICS, float("nan"))
    sets = PixelSets(maps, gt)
    auroc, ap, f1max = rank_metrics(sets.pos, sets.neg)
    if protocol == "released":
        return dict(pixel_auroc=auroc, pixel_ap=ap, pixel_f1max=sets.released_f1max(),
                    pixel_aupro=sets.released_aupro())
    return dict(pixel_auroc=auroc, pixel_ap=ap, pixel_f1max=f1max, pixel_aupro=sets.kit_aupro())


__all__ = ["PROTOCOLS", "METRIC_NAMES", "IMAGE_METRICS", "PIXEL_METRICS", "check_maps_masks",
           "check_image_inputs", "compute_metrics", "image_metrics", "released_labels", "undefined",
           "valid_images"]
