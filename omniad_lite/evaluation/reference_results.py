"""Published multi-class results of the methods Omni-AD compares against (the peers' own numbers).

Values are percentages as printed in the papers, listed in docs/method.md ("Published anchors"; multi-class setting,
256² input). Sources: MambaAD (He et al., NeurIPS 2024, arXiv 2404.06564), InvAD (Zhang et al.,
arXiv 2404.10760) and ViTAD (Zhang et al., arXiv 2312.07495); ViTAD trained in 1.1 h with 2.3 GB on one
V100. Only what docs/method.md lists is recorded: a missing number is ``NaN``, never estimated.

:data:`ADER_100_EPOCHS` holds the yardstick of a 100-epoch run (the ``paper-mvtec-100`` preset): ADer's re-runs
of the peers in one code base at 100 epochs (Zhang et al., "A Comprehensive Library for Benchmarking
Multi-class Visual Anomaly Detection", arXiv 2406.03262), copied from the table "MVTec AD-100epochs" of
github zhangzjn/ADer ``configs/benchmark/README.md`` (commit ac5f4fc; multi-class, 256², re-run on one L40S).
ADer's mAD column is recorded as printed: for seven of the eight methods it is 1.4–1.9 points above the mean
of the seven metrics printed beside it (DiAD's matches), so compare the seven metrics rather than mAD.
"""
from __future__ import annotations

import math

import pandas as pd

from ..errors import InputError

METRIC_COLUMNS = ("image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap", "pixel_f1max",
                  "pixel_aupro", "mad")
DATASETS = ("mvtec", "visa", "realiad")
_NAN = math.nan


def _row(i_auroc=_NAN, i_ap=_NAN, i_f1=_NAN, p_auroc=_NAN, p_ap=_NAN, p_f1=_NAN, pro=_NAN, mad=_NAN) -> dict:
    return dict(zip(METRIC_COLUMNS, (i_auroc, i_ap, i_f1, p_auroc, p_ap, p_f1, pro, mad)))


# {dataset: {method: {metric: value}}} — class means, ×100.
REFERENCE_RESULTS: dict[str, dict[str, dict[str, float]]] = {
    "mvtec": {
        "MambaAD": _row(98.6, 99.6, 97.8, 97.7, 56.3, 59.2, 93.1, 86.0),
        "InvAD": _row(mad=86.7),
        "ViTAD": _row(mad=85.4),
    },
    "visa": {
        "MambaAD": _row(94.3, 94.5, 89.4, 98.5, 39.4, 44.0, 91.0, 78.7),
        "InvAD": _row(mad=80.7),
        "ViTAD": _row(mad=75.6),
    },
    "realiad": {
        "MambaAD": _row(86.3, 84.6, 77.0, 98.5, 33.0, 38.7, 90.5, 72.7),
        "InvAD": _row(mad=73.4),
        "ViTAD": _row(mad=67.8),
    },
}

# {dataset: {method: {metric: value}}} — ADer's 100-epoch re-runs (module docstring), class means ×100.
ADER_100_EPOCHS: dict[str, dict[str, dict[str, float]]] = {
    "mvtec": {
        "UniAD": _row(92.5, 97.3, 95.4, 95.8, 42.7, 48.0, 89.3, 82.0),
        "RD": _row(93.6, 97.2, 95.6, 95.8, 48.2, 53.6, 91.2, 83.8),
        "SimpleNet": _row(95.4, 98.3, 95.7, 96.8, 48.8, 51.9, 86.9, 83.8),
        "DiAD": _row(88.9, 95.8, 93.5, 89.3, 27.0, 32.5, 63.9, 70.1),
        "PatchCore": _row(98.8, 99.5, 98.4, 98.3, 59.9, 61.0, 94.2, 88.6),
        "ViTAD": _row(98.3, 99.3, 97.3, 97.6, 55.2, 58.4, 92.0, 87.1),
        "InvAD": _row(98.1, 99.0, 97.6, 98.0, 56.3, 59.2, 94.4, 87.6),
        "MambaAD": _row(97.8, 99.3, 97.3, 97.4, 55.1, 57.6, 93.4, 87.0),
    },
}
SCHEDULES = {"published": REFERENCE_RESULTS, "ader-100": ADER_100_EPOCHS}


def reference_table(dataset: str, schedule: str = "published") -> pd.DataFrame:
    """Class-mean results for ``dataset`` (``"mvtec"``, ``"visa"`` or ``"realiad"``), ×100.

    Args:
        dataset: the benchmark.
        schedule: ``"published"`` (the methods' own papers) or ``"ader-100"`` (ADer's 100-epoch re-runs,
            MVTec-AD only).

    Returns:
        Rows are methods, columns the metric names used by :func:`omniad_lite.metrics.compute_metrics`.
    """
    if schedule not in SCHEDULES:
        raise InputError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}")
    results = SCHEDULES[schedule]
    if dataset not in results:
        raise InputError(f"no {schedule} results recorded for dataset {dataset!r}; choose one of {sorted(results)}")
    return pd.DataFrame.from_dict(results[dataset], orient="index")[list(METRIC_COLUMNS)]
