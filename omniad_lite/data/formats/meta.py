"""ADer ``meta.json`` (the split file the released Omni-AD code reads for MVTec-AD and VisA).

``{"train": {"<class>": [{"img_path", "mask_path", "cls_name", "specie_name", "anomaly"}, ...]}, "test": ...}``
with paths relative to the root (github easyoo/Omni-AD ``data/ad_dataset.py``, from ADer). Reading it lets
users reuse split files they already have; :func:`omniad_lite.data.prepare.write_meta` writes one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..sample import NORMAL_DEFECT, Sample
from . import reject_options, require_file

META_FILE = "meta.json"
EXPECTED = META_FILE
KEYS = ("img_path", "mask_path", "cls_name", "specie_name", "anomaly")
OPTIONS = ("meta_file",)


def looks_like(root: Path) -> bool:
    return (root / META_FILE).is_file()


def _load(root: Path, meta_file: str) -> dict[str, Any]:
    path = require_file(root / meta_file, "ADer meta file")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON ({e}); regenerate it with data_scripts/prepare_*.py "
                         f"--write-meta") from None
    if not isinstance(meta, dict) or not all(isinstance(meta.get(s), dict) for s in ("train", "test")):
        raise DataError(f"{path} must hold {{'train': {{class: [records]}}, 'test': {{...}}}}")
    return meta


def list_classes(root: Path, meta_file: str = META_FILE, **options: Any) -> list[str]:
    reject_options("meta", options, OPTIONS)
    meta = _load(root, meta_file)
    return sorted(set(meta["train"]) | set(meta["test"]))


def read(root: Path, split: str, classes: list[str], meta_file: str = META_FILE, *,
         masks_required: bool = True, **options: Any) -> list[Sample]:
    reject_options("meta", options, OPTIONS)
    meta = _load(root, meta_file)
    path = root / meta_file
    samples = []
    for cls in classes:
        for i, rec in enumerate(meta[split].get(cls, [])):
            missing = [k for k in KEYS if k not in rec]
            if missing:
                raise DataError(f"{path}: {split}/{cls} record #{i} lacks key(s) {missing}; each record needs "
                                 f"{', '.join(KEYS)}")
            image = require_file(root / rec["img_path"], f"image of {split}/{cls} record #{i} in {path}:")
            if int(rec["anomaly"]) == 0:
                samples.append(Sample(str(image), None, cls, rec["specie_name"] or NORMAL_DEFECT, 0))
                continue
            if not rec["mask_path"]:
                if masks_required:
                    raise DataError(f"anomalous image {image} ({split}/{cls} record #{i} in {path}) has no "
                                     f"mask_path; add the mask, set anomaly to 0 or load with masks='optional'")
                samples.append(Sample(str(image), None, cls, rec["specie_name"] or "anomaly", 1))
                continue
            mask = require_file(root / rec["mask_path"], f"mask of {split}/{cls} record #{i} in {path}:")
            samples.append(Sample(str(image), str(mask), cls, rec["specie_name"] or "anomaly", 1))
    return samples
