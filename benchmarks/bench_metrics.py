"""Time the metrics on an MVTec-AD-sized synthetic test set (1,725 maps of 256², 15 classes).

Usage:
    .venv/bin/python benchmarks/bench_metrics.py                 # full size, kit + released + accumulator
    .venv/bin/python benchmarks/bench_metrics.py --naive-classes 1  # also time the naive baseline on 1 class

The synthetic set mimics MVTec-AD's test split: per class ~115 images, about 73 % of them anomalous with one
to four elliptical defects (a few hundred to a few thousand pixels each); maps are smooth low-frequency noise
plus a raised response over (and around) each defect. Data generation is not timed.

The naive baseline is what evaluation scripts in this line of work usually do: sklearn ``roc_auc_score``,
``average_precision_score`` and ``precision_recall_curve`` on all pixels, plus the per-threshold AU-PRO loop
of cflow-ad/ADer ``cal_pro_score`` (``skimage.measure.regionprops`` per image per threshold, 100 thresholds).
It takes minutes, so it is timed on ``--naive-classes`` classes and extrapolated to all classes.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from skimage import measure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from omniad_lite.evaluation.metrics import compute_metrics
from omniad_lite.evaluation.stream import MetricAccumulator

MVTEC_TEST_IMAGES = 1725
MVTEC_CLASSES = 15
ANOMALOUS_FRACTION = 0.73  # 1,258 of 1,725 MVTec-AD test images are anomalous
NOISE_GRID = 16  # maps are upsampled from this coarse noise grid (smooth, like blurred 1 - cos maps)


def synthetic_class(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, ...]:
    """``(scores, labels, maps, masks)`` for one class."""
    labels = (rng.random(n) < ANOMALOUS_FRACTION).astype(np.int64)
    masks = np.zeros((n, size, size), dtype=bool)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    signal = np.zeros((n, size, size), dtype=np.float32)
    for i in np.flatnonzero(labels):
        for _ in range(rng.integers(1, 5)):
            cy, cx = rng.uniform(0.1, 0.9, 2) * size
            ry, rx = rng.uniform(0.01, 0.08, 2) * size
            d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
            masks[i] |= d <= 1
            signal[i] += rng.uniform(0.05, 0.3) * np.exp(-0.5 * d)
    noise = torch.from_numpy(rng.gamma(2.0, 0.04, size=(n, 1, NOISE_GRID, NOISE_GRID)).astype(np.float32))
    maps = F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=True)[:, 0].numpy() + signal
    return maps.max(axis=(1, 2)), labels, maps, masks


def naive_metrics(scores, labels, maps, masks, steps=100, limit=0.3) -> None:
    """sklearn on all pixels + the per-threshold regionprops AU-PRO loop (cflow-ad / ADer style)."""
    y, s = masks.ravel(), maps.ravel()
    roc_auc_score(labels, scores), average_precision_score(labels, scores)
    roc_auc_score(y, s), average_precision_score(y, s)
    p, r, _ = precision_recall_curve(y, s)
    np.max(np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0))
    lo, hi = maps.min(), maps.max()
    pros, fprs = [], []
    for th in lo + (hi - lo) / steps * np.arange(steps):
        binary = maps > th
        pro = [binary[i][reg.coords[:, 0], reg.coords[:, 1]].mean()
               for i in range(len(masks)) for reg in measure.regionprops(measure.label(masks[i]))]
        pros.append(np.mean(pro))
        fprs.append((binary & ~masks).sum() / (~masks).sum())
    pros, fprs = np.array(pros), np.array(fprs)
    keep = fprs < limit
    f = (fprs[keep] - fprs[keep].min()) / (fprs[keep].max() - fprs[keep].min())
    auc(f, pros[keep])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=MVTEC_TEST_IMAGES)
    ap.add_argument("--classes", type=int, default=MVTEC_CLASSES)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--naive-classes", type=int, default=0, help="classes to time the naive baseline on")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    per_class = np.full(args.classes, args.images // args.classes)
    per_class[: args.images % args.classes] += 1
    times = {"kit": 0.0, "released": 0.0, "accumulator (kit, batches of 16)": 0.0}
    naive_times, pixels = [], 0
    for c, n in enumerate(per_class):
        scores, labels, maps, masks = synthetic_class(rng, int(n), args.size)
        pixels += maps.size
        for protocol in ("kit", "released"):
            t = time.perf_counter()
            compute_metrics(scores, labels, maps, masks, protocol=protocol)
            times[protocol] += time.perf_counter() - t
        t = time.perf_counter()
        acc = MetricAccumulator("kit")
        for i in range(0, int(n), 16):
            acc.update(scores[i:i + 16], labels[i:i + 16], maps[i:i + 16], masks[i:i + 16])
        acc.compute()
        times["accumulator (kit, batches of 16)"] += time.perf_counter() - t
        if c < args.naive_classes:
            t = time.perf_counter()
            naive_metrics(scores, labels, maps, masks)
            naive_times.append(time.perf_counter() - t)
    print(f"{args.images} maps of {args.size}², {args.classes} classes, {pixels / 1e6:.1f} M pixels, "
          f"torch threads {torch.get_num_threads()}")
    for k, v in times.items():
        print(f"  {k:34s} {v:7.2f} s total ({v / args.classes:.2f} s / class)")
    if naive_times:
        mean = float(np.mean(naive_times))
        print(f"  naive sklearn + per-threshold loop {mean:7.2f} s / class on {len(naive_times)} class(es) "
              f"→ {mean * args.classes:.0f} s extrapolated to {args.classes} classes")


if __name__ == "__main__":
    main()
