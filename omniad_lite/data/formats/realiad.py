"""Real-IAD layout: per-class jsons next to resolution folders (Wang et al., CVPR 2024,
https://realiad4ad.github.io/Real-IAD/).

``<root>/<resolution>/<class>/...`` holds images and masks (``realiad_256`` ... ``realiad_raw``) and
``<root>/<json_dir>/<class>.json`` the split: ``{"meta": {"normal_class": "OK", ...}, "train": [...],
"test": [...]}``, each sample with exactly the keys ``category``, ``anomaly_class``, ``image_path``,
``mask_path`` (paths relative to ``<resolution>/<class>/``). A sample is normal when ``anomaly_class`` is
``meta.normal_class`` or ``mask_path`` is null. The camera view is the ``_C<n>_`` part of the file name.

The released Omni-AD Real-IAD config names a dataset class that does not exist (docs/method.md); its intent, and our
default, is all five views with each image a separate sample.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..sample import NORMAL_DEFECT, Sample
from . import reject_options, require_file

RESOLUTION = "realiad_256"
JSON_DIR = "realiad_jsons/realiad_jsons"
ALL_VIEWS = (1, 2, 3, 4, 5)
KEYS = ("category", "anomaly_class", "image_path", "mask_path")
DEFAULT_NORMAL_CLASS = "OK"
EXPECTED = f"{JSON_DIR}/<class>.json and {RESOLUTION}/<class>/"
OPTIONS = ("resolution", "json_dir", "views")
_VIEW = re.compile(r"_C(\d+)_")


def looks_like(root: Path) -> bool:
    return (root / "realiad_jsons").is_dir() and any(root.glob("realiad_*/*/"))


def _json_dir(root: Path, json_dir: str) -> Path:
    path = root / json_dir
    if not path.is_dir():
        found = sorted(str(p.relative_to(root)) for p in root.glob("realiad_jsons*/*") if p.is_dir())
        raise FileNotFoundError(f"Real-IAD json folder {path} does not exist; pass json_dir= one of {found} "
                                f"(realiad_jsons/realiad_jsons is the multi-view split)")
    return path


def list_classes(root: Path, resolution: str = RESOLUTION, json_dir: str = JSON_DIR, views: Any = None,
                 **options: Any) -> list[str]:
    reject_options("realiad", options, OPTIONS)
    return sorted(p.stem for p in _json_dir(root, json_dir).glob("*.json"))


def view_of(path: str) -> int | None:
    """Camera view number from a Real-IAD file name (``..._C3_...`` → 3), ``None`` if absent."""
    m = _VIEW.search(Path(path).name)
    return int(m.group(1)) if m else None


def _check_views(views: Any) -> tuple[int, ...]:
    if views is None:
        return ALL_VIEWS
    views = tuple(int(v) for v in views)
    bad = [v for v in views if v not in ALL_VIEWS]
    if bad or not views:
        raise DataError(f"Real-IAD views={list(views)} must be a non-empty subset of {list(ALL_VIEWS)}")
    return views


def read(root: Path, split: str, classes: list[str], resolution: str = RESOLUTION, json_dir: str = JSON_DIR,
         views: Any = None, *, masks_required: bool = True, **options: Any) -> list[Sample]:
    """Real-IAD samples; ``masks_required`` changes nothing: a null ``mask_path`` marks a normal sample."""
    reject_options("realiad", options, OPTIONS)
    keep = _check_views(views)
    res_dir = root / resolution
    if not res_dir.is_dir():
        found = sorted(p.name for p in root.glob("realiad_*") if p.is_dir() and not p.name.startswith("realiad_jsons"))
        raise FileNotFoundError(f"Real-IAD resolution folder {res_dir} does not exist; pass resolution= one "
                                f"of {found}")
    jdir = _json_dir(root, json_dir)
    samples = []
    for cls in classes:
        jpath = require_file(jdir / f"{cls}.json", "Real-IAD class json")
        try:
            data = json.loads(jpath.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{jpath} is not valid JSON ({e}); re-extract realiad_jsons") from None
        if split not in data:
            raise DataError(f"{jpath} has no {split!r} list; a Real-IAD json holds 'meta', 'train', 'test'")
        normal_class = data.get("meta", {}).get("normal_class", DEFAULT_NORMAL_CLASS)
        for i, rec in enumerate(data[split]):
            missing = [k for k in KEYS if k not in rec] if isinstance(rec, dict) else list(KEYS)
            if missing:
                raise DataError(f"{jpath}: {split} sample #{i} lacks key(s) {missing}; each Real-IAD sample "
                                 f"needs {', '.join(KEYS)} (is this a Real-IAD json?)")
            view = view_of(rec["image_path"])
            if view is not None and view not in keep:
                continue
            image = require_file(res_dir / cls / rec["image_path"], f"image of {split} sample #{i} in {jpath}:")
            if rec["anomaly_class"] == normal_class or rec["mask_path"] is None:
                samples.append(Sample(str(image), None, cls, NORMAL_DEFECT, 0))
                continue
            mask = require_file(res_dir / cls / rec["mask_path"], f"mask of {split} sample #{i} in {jpath}:")
            samples.append(Sample(str(image), str(mask), cls, str(rec["anomaly_class"]), 1))
    return samples
