"""VisA layout: the split is the csv ``<root>/split_csv/1cls.csv`` (header ``object,split,label,image,mask``).

``image``/``mask`` are paths relative to ``<root>``; ``label`` is ``normal`` or ``anomaly`` (Zou et al.,
ECCV 2022, github amazon-science/spot-diff). VisA gives no defect types, so anomalous samples get the defect
name ``"anomaly"``. Masks are PNG; any non-zero pixel is anomalous (binarised when decoded).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..sample import NORMAL_DEFECT, Sample
from . import reject_options, require_file

SPLIT_FILE = "split_csv/1cls.csv"
EXPECTED = SPLIT_FILE
COLUMNS = ("object", "split", "label", "image", "mask")
OPTIONS = ("split_file",)
ANOMALY_DEFECT = "anomaly"


def looks_like(root: Path) -> bool:
    return (root / SPLIT_FILE).is_file()


def _rows(root: Path, split_file: str) -> list[dict[str, str]]:
    path = require_file(root / split_file, "VisA split file")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path} lacks column(s) {missing}; a VisA split csv has the header "
                             f"{','.join(COLUMNS)}")
        return list(reader)


def list_classes(root: Path, split_file: str = SPLIT_FILE, **options: Any) -> list[str]:
    reject_options("visa", options, OPTIONS)
    return sorted({r["object"] for r in _rows(root, split_file)})


def read(root: Path, split: str, classes: list[str], split_file: str = SPLIT_FILE, *,
         masks_required: bool = True, **options: Any) -> list[Sample]:
    reject_options("visa", options, OPTIONS)
    wanted = set(classes)
    samples = []
    csv_path = root / split_file
    for line, row in enumerate(_rows(root, split_file), start=2):
        if row["split"] != split or row["object"] not in wanted:
            continue
        image = require_file(root / row["image"], f"image listed on line {line} of {csv_path}:")
        if row["label"] == "normal":
            samples.append(Sample(str(image), None, row["object"], NORMAL_DEFECT, 0))
        elif row["label"] == "anomaly":
            if not row["mask"] and masks_required:
                raise DataError(f"anomalous image {image} (line {line} of {csv_path}) has no mask; fill "
                                 f"its mask column, remove the row or load with masks='optional'")
            mask = require_file(root / row["mask"], f"mask listed on line {line} of {csv_path}:") \
                if row["mask"] else None
            samples.append(Sample(str(image), mask and str(mask), row["object"], ANOMALY_DEFECT, 1))
        else:
            raise DataError(f"line {line} of {csv_path}: label {row['label']!r} must be 'normal' or 'anomaly'")
    return samples
