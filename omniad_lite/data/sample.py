"""One record per image of a dataset split: :class:`Sample`.

Every layout reader (:mod:`omniad_lite.data.formats`) produces these, and everything downstream (datasets,
caches, evaluation) consumes them. This module imports nothing else from the kit.
"""
from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "test")
NORMAL_DEFECT = "good"  # defect name used for every normal image (MVTec-AD's folder name)


@dataclass(frozen=True)
class Sample:
    """One image of a dataset split.

    Args:
        image_path: absolute path of the image file.
        mask_path: absolute path of its ground-truth mask (``None`` for normal images).
        cls_name: object/texture class, e.g. ``"bottle"``.
        defect: defect type (``"good"`` for normal images).
        label: 0 normal, 1 anomalous.
    """

    image_path: str
    mask_path: str | None
    cls_name: str
    defect: str
    label: int


def class_names(samples: list[Sample]) -> list[str]:
    """Sorted class names present in ``samples``."""
    return sorted({s.cls_name for s in samples})
