"""Tables as a reader sees them: short metric names, one decimal, at most ~100 characters wide.

Metric tables keep the kit's column names (``image_auroc`` ...) everywhere they are data; these helpers only
relabel them for display, as the papers print them (I-AUROC ... mAD). :func:`expectation_table` puts the
published multi-class anchors (:mod:`omniad_lite.evaluation.reference_results`) beside a run's class mean.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from ..data.prepare import DATASET_NAMES
from ..evaluation.reference_results import DATASETS, METRIC_COLUMNS, reference_table

SHORT_NAMES = {"image_auroc": "I-AUROC", "image_ap": "I-AP", "image_f1max": "I-F1max",
               "pixel_auroc": "P-AUROC", "pixel_ap": "P-AP", "pixel_f1max": "P-F1max",
               "pixel_aupro": "AU-PRO", "mad": "mAD"}
ADER_100_LABEL = "MVTec-AD 100ep (ADer)"  # ADer's 100-epoch re-runs: the yardstick of paper-mvtec-100
DECIMALS = 1
OTHER_DATA = "demo data (other)"  # the data label of rows that are not on a benchmark


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with metric columns renamed to their short names and values rounded to one decimal."""
    return table.rename(columns=SHORT_NAMES).round(DECIMALS)


def expectation_table(ours: Mapping[str, pd.Series] | None = None) -> pd.DataFrame:
    """Published class means of the multi-class peers on the three benchmarks, ADer's 100-epoch re-runs of
    the peers on MVTec-AD (:data:`ADER_100_LABEL`, for 100-epoch runs such as ``paper-mvtec-100``), then
    ``ours`` (other data).

    Args:
        ours: ``{row label: class-mean Series with the metric columns}``, e.g. a demo-data run; listed under
            the data set name :data:`OTHER_DATA` (not comparable with the benchmarks).

    Returns:
        Rows indexed by (data set, method), the 7 metrics and mAD in short names; ``NaN`` where a paper
        does not report a metric (never estimated).
    """
    parts = {DATASET_NAMES[d]: reference_table(d) for d in DATASETS}
    parts[ADER_100_LABEL] = reference_table("mvtec", "ader-100")
    table = pd.concat(parts, names=["data", "method"])
    if ours:
        mine = pd.DataFrame({label: pd.Series(row)[list(METRIC_COLUMNS)] for label, row in ours.items()}).T
        mine.index = pd.MultiIndex.from_tuples([(OTHER_DATA, label) for label in mine.index],
                                               names=["data", "method"])
        table = pd.concat([table, mine.astype(float)])
    return readable(table)
