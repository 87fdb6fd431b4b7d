"""Published multi-class results of the methods Omni-AD compares against (the peers' own numbers).

Values are percentages as printed in the papers, listed in docs/method.md ("Published anchors"; multi-class setting,
256² input). Sources: MambaAD (He et al., NeurIPS 2024, arXiv 2404.06564), InvAD (Zhang et al.,
arXiv 2404.10760) and ViTAD (Zhang et al., arXiv 2312.07495); ViTAD trained in 1.1 h with 2.3 GB on one
V100. Only what docs/method.md lists is recorded: a missing number is ``NaN``, never estimated.
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


def reference_table(dataset: str) -> pd.DataFrame:
    """Published class-mean results for ``dataset`` (``"mvtec"``, ``"visa"`` or ``"realiad"``), ×100.

    Rows are methods, columns the metric names used by :func:`omniad_lite.metrics.compute_metrics`.
    """
    if dataset not in REFERENCE_RESULTS:
        raise InputError(f"no published results recorded for dataset {dataset!r}; choose one of {DATASETS}")
    return pd.DataFrame.from_dict(REFERENCE_RESULTS[dataset], orient="index")[list(METRIC_COLUMNS)]
