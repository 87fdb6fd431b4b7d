"""Streaming metrics with memory bounded independently of the number of test images.

The definitions and the two protocols are in :mod:`omniad_lite.evaluation.metrics`. The released code (ADer
``evaluator``) keeps every map of the test set in memory before scoring; that does not fit for Real-IAD-sized
test sets, so this is our addition.

Scheme: anomaly maps from :func:`omniad_lite.model.anomaly_map.anomaly_map` lie in the known range ``[0, 2]``
(``1 - cos`` averaged and blurred). Pixels are binned over ``score_range`` with *floating-point* bins: the
offset ``s = (v - lo) / (hi - lo)`` in ``[0, 1]`` is cast to float32 and its bit pattern (exponent and the
top ``m`` mantissa bits) is the bin, for ``s >= 2**-24`` (below: bin 0). Bins are thus ``2**-m`` relative wide
at every scale — fine near ``lo``, where normal pixels of a good model crowd (1 - cos ≈ 1e-3 … 1e-1),
and never coarser than ``2**-m`` of the value — with ``24 · 2**m + 1`` bins in all; ``m`` is the largest
that keeps this within ``num_bins`` (default 2¹⁸ → m = 13, 196,609 bins). Per bin we keep three numbers:
normal pixel count, anomalous pixel count, and the anomalous pixels' PRO weight ``Σ 1/|region|``
(regions are 8-connected components within one image, labelled per batch, so a region never straddles two
updates). PRO(t) = (weight above t) / (number of regions), so only the total region count is needed at the
end. Each bin then acts as one threshold level: the curve metrics are computed by the same code as the
exact path, with pixels inside a bin treated as ties. Memory: ``24 bytes × bins`` (4.5 MiB by default)
plus one float per image for the image metrics, which stay exact. ``tests/test_metrics.py`` checks pixel
AUROC/AP within 1e-4 and AU-PRO within 1e-3 of the exact values.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InputError
from . import released
from .curve_metrics import CONNECTIVITY_8, aupro_from_levels, rank_metrics_from_counts
from .metrics import (
    METRIC_NAMES,
    PIXEL_METRICS,
    PROTOCOLS,
    check_image_inputs,
    check_maps_masks,
    image_metrics,
    released_labels,
    undefined,
    valid_images,
)

DEFAULT_NUM_BINS = 2 ** 18  # upper bound on the bins; gives 13 mantissa bits (relative bin width 1.2e-4)
FLOAT32_MANTISSA_BITS = 23
FLOOR_OCTAVES = 24  # offsets below 2**-24 of the range share bin 0
FLOOR = np.float32(2.0 ** -FLOOR_OCTAVES)
FLOOR_BITS = int(FLOOR.view(np.int32))
SCORE_RANGE = (0.0, 2.0)  # 1 - cosine similarity, averaged over scales and blurred, stays in [0, 2]
RANGE_TOLERANCE = 1e-4  # values this far outside the range (float rounding) are clipped into the end bins


class MetricAccumulator:
    """Accumulate one class's scores, labels, maps and masks batch by batch; ``compute()`` the metrics.

    Args:
        protocol: ``"kit"`` or ``"released"`` (see :mod:`omniad_lite.metrics`).
        num_bins: at most this many histogram bins (floating-point bins, see the module docstring).
        score_range: ``(lo, hi)`` that contains every map value (default ``[0, 2]``, the range of
            ``anomaly_map``); values further than ``RANGE_TOLERANCE · (hi - lo)`` outside raise.
        allow_undefined: NaN instead of a ``ValueError`` for metrics the data cannot define.
    """

    def __init__(self, protocol: str = "kit", num_bins: int = DEFAULT_NUM_BINS,
                 score_range: tuple[float, float] = SCORE_RANGE, *, allow_undefined: bool = False):
        if protocol not in PROTOCOLS:
            raise InputError(f"protocol={protocol!r}: choose one of {PROTOCOLS}")
        lo, hi = map(float, score_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise InputError(f"score_range={score_range!r}: need finite lo < hi")
        mantissa_bits = int(np.floor(np.log2(max(int(num_bins) - 1, 1) / FLOOR_OCTAVES)))
        if not 0 <= mantissa_bits <= FLOAT32_MANTISSA_BITS:
            raise InputError(f"num_bins={num_bins!r}: give between {FLOOR_OCTAVES + 1} and "
                             f"{FLOOR_OCTAVES * 2 ** FLOAT32_MANTISSA_BITS + 1} bins")
        self._shift = FLOAT32_MANTISSA_BITS - mantissa_bits
        self.num_bins = FLOOR_OCTAVES * 2 ** mantissa_bits + 1
        self.protocol, self.score_range = protocol, (lo, hi)
        edge_bits = FLOOR_BITS + (np.arange(self.num_bins + 1, dtype=np.int64) << self._shift)
        edges = edge_bits.astype(np.int32).view(np.float32).astype(np.float64)
        edges[0] = 0.0  # bin 0 also holds offsets below the floor
        self.centres = lo + (hi - lo) * 0.5 * (edges[:-1] + edges[1:])  # (num_bins,) bin centres, value units
        self.allow_undefined = allow_undefined
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.neg_hist = np.zeros(self.num_bins, dtype=np.int64)  # normal pixels per bin
        self.pos_hist = np.zeros(self.num_bins, dtype=np.int64)  # anomalous pixels per bin
        self.pos_weight = np.zeros(self.num_bins, dtype=np.float64)  # Σ 1/|region| per bin
        self.num_regions = 0
        self.map_min, self.map_max = np.inf, -np.inf
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []  # the given labels ("kit") or the masks' ("released")
        self.num_images = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the pixel histograms (independent of the number of images)."""
        return self.neg_hist.nbytes + self.pos_hist.nbytes + self.pos_weight.nbytes

    def _bins(self, values: np.ndarray) -> np.ndarray:
        lo, hi = self.score_range
        tol = RANGE_TOLERANCE * (hi - lo)
        if values.size and (values.min() < lo - tol or values.max() > hi + tol):
            raise InputError(f"map values [{values.min():.4g}, {values.max():.4g}] fall outside score_range "
                             f"{self.score_range}; pass MetricAccumulator(score_range=(lo, hi)) covering them")
        offset = np.clip((values - lo) / (hi - lo), FLOOR, 1.0).astype(np.float32)  # monotone cast
        return (offset.view(np.int32) - FLOOR_BITS) >> self._shift

    def update(self, image_scores, image_labels, maps, masks, pixel_valid=None) -> None:
        """Add a batch.

        Args:
            image_scores: ``(B,)`` image scores.
            image_labels: ``(B,)`` 0/1 labels.
            maps: ``(B, H, W)`` or ``(B, 1, H, W)`` anomaly maps (numpy or torch).
            masks: ground-truth masks of the same shape (any non-zero pixel is anomalous).
            pixel_valid: optional ``(B,)`` booleans, images whose mask is known (only these enter the pixel
                metrics; see :func:`~omniad_lite.evaluation.metrics.compute_metrics`).
        """
        try:
            amaps, gt = check_maps_masks(maps, masks)
        except ValueError as e:  # name the image by its position in the whole stream, not in the batch
            msg = str(e)
            if "image index" in msg:
                i = int(msg.split("image index ")[1].split()[0])
                msg = msg.replace(f"image index {i}", f"image index {self.num_images + i}", 1)
            raise InputError(msg) from None
        scores, labels = check_image_inputs(image_scores, image_labels, n=amaps.shape[0])
        n_images = amaps.shape[0]
        keep = valid_images(pixel_valid, n_images)
        if self.protocol == "released":  # labels from the masks where a mask is known
            labels = np.where(keep, released_labels(gt), labels)
        amaps, gt = amaps[keep], gt[keep]  # (B', H, W): images with a known mask
        structure = np.zeros((3, 3, 3), dtype=bool)
        structure[1] = CONNECTIVITY_8
        regions, n_regions = ndimage.label(gt, structure=structure)  # (B, H, W)
        region_of_pos = regions[gt]
        sizes = np.bincount(region_of_pos, minlength=n_regions + 1)
        pos_bins = self._bins(amaps[gt])
        self.pos_hist += np.bincount(pos_bins, minlength=self.num_bins)
        self.pos_weight += np.bincount(pos_bins, weights=1.0 / sizes[region_of_pos], minlength=self.num_bins)
        self.neg_hist += np.bincount(self._bins(amaps[~gt]), minlength=self.num_bins)
        self.num_regions += int(n_regions)
        if amaps.size:
            self.map_min = min(self.map_min, float(amaps.min()))
            self.map_max = max(self.map_max, float(amaps.max()))
        self._scores.append(scores)
        self._labels.append(labels)
        self.num_images += n_images

    def compute(self) -> dict[str, float]:
        """The seven metrics and mAD (fractions), like :func:`omniad_lite.metrics.compute_metrics`."""
        if self.num_images == 0:
            raise InputError("MetricAccumulator.compute(): no images were added; call update() first")
        out = image_metrics(np.concatenate(self._scores), np.concatenate(self._labels), self.allow_undefined,
                            self.protocol)
        n_pos, n_neg = int(self.pos_hist.sum()), int(self.neg_hist.sum())
        if n_pos == 0 or n_neg == 0:
            undefined(f"pixel metrics are undefined: the masks of these {self.num_images} images have "
                          f"{'no anomalous' if n_pos == 0 else 'only anomalous'} pixels", self.allow_undefined)
            out.update(dict.fromkeys(PIXEL_METRICS, float("nan")))
        else:
            out.update(self._pixel_metrics(n_pos, n_neg))
        out["mad"] = float(np.mean([out[k] for k in METRIC_NAMES]))
        return out

    def _pixel_metrics(self, n_pos: int, n_neg: int) -> dict[str, float]:
        neg_lt = np.cumsum(self.neg_hist) - self.neg_hist  # normal pixels in lower bins
        tp = np.cumsum(self.pos_hist[::-1])[::-1]  # anomalous pixels in this bin or higher
        b = np.flatnonzero(self.pos_hist)
        auroc, ap, f1max = rank_metrics_from_counts(self.pos_hist[b], tp[b], neg_lt[b], self.neg_hist[b], n_neg)
        w_ge = np.cumsum(self.pos_weight[::-1])[::-1] / self.num_regions  # PRO at >= bin
        centres = self.centres
        if self.protocol == "released":  # the bin centres stand for the pixels' scores
            neg_ge = np.r_[np.cumsum(self.neg_hist[::-1])[::-1], 0]  # normal pixels in this bin or higher
            above = np.searchsorted(centres, released.pro_thresholds(self.map_min, self.map_max), "right")
            aupro = released.pro_area(neg_ge[above] / n_neg, np.r_[w_ge, 0.0][above])
            f1max = 0.0
            if self.map_max > self.map_min:
                normalised = released.normalise(centres, self.map_min, self.map_max)
                first = np.searchsorted(normalised, released.RELEASED_F1_SCORES, "right")
                tp_f1 = np.r_[tp, 0][first]
                f1max = released.f1max_from_counts(tp_f1, tp_f1 + neg_ge[first], n_pos)
        else:
            neg_le = neg_lt + self.neg_hist
            aupro = aupro_from_levels(self.pos_weight[b] / self.num_regions, (n_neg - neg_le[b]) / n_neg,
                                         (n_neg - neg_lt[b]) / n_neg)
        return dict(pixel_auroc=auroc, pixel_ap=ap, pixel_f1max=f1max, pixel_aupro=aupro)
