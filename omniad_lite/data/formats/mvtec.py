"""MVTec-AD tree layout (also any custom data laid out the same way, with any class names).

``<root>/<class>/train/good/*.png``, ``<root>/<class>/test/<defect>/*.png`` and the mask of
``test/<defect>/NNN.png`` at ``ground_truth/<defect>/NNN_mask.png`` (docs/data_formats.md; Bergmann et al., CVPR 2019).
For custom data we also accept a mask named like its image (``NNN.png``) when ``NNN_mask.png`` is absent.
A missing mask raises unless ``masks="optional"`` is passed to ``load_samples`` (then the anomalous image
has no mask and only image metrics are defined for it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..sample import NORMAL_DEFECT, Sample
from . import is_image, reject_options

EXPECTED = "<class>/train/good/ (MVTec-AD tree)"
MASK_SUFFIX = "_mask"


def looks_like(root: Path) -> bool:
    return any((d / "train" / NORMAL_DEFECT).is_dir() or (d / "test").is_dir()
               for d in root.iterdir() if d.is_dir())


def list_classes(root: Path, **options: Any) -> list[str]:
    reject_options("mvtec", options)
    return sorted(d.name for d in root.iterdir()
                  if d.is_dir() and ((d / "train").is_dir() or (d / "test").is_dir()))


def mask_for(cls_dir: Path, defect: str, image: Path) -> Path | None:
    gt = cls_dir / "ground_truth" / defect
    for candidate in (gt / f"{image.stem}{MASK_SUFFIX}.png", gt / f"{image.stem}.png",
                      gt / f"{image.stem}{MASK_SUFFIX}{image.suffix}"):
        if candidate.is_file():
            return candidate
    return None


def read(root: Path, split: str, classes: list[str], *, masks_required: bool = True,
         **options: Any) -> list[Sample]:
    reject_options("mvtec", options)
    samples = []
    for cls in classes:
        split_dir = root / cls / split
        if not split_dir.is_dir():
            continue  # reported by load_samples as "no <split> images"
        for defect_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            defect = defect_dir.name
            for image in sorted(p for p in defect_dir.iterdir() if is_image(p)):
                if defect == NORMAL_DEFECT:
                    samples.append(Sample(str(image), None, cls, NORMAL_DEFECT, 0))
                    continue
                mask = mask_for(root / cls, defect, image)
                if mask is None and masks_required:
                    expected = root / cls / "ground_truth" / defect / f"{image.stem}{MASK_SUFFIX}.png"
                    raise FileNotFoundError(f"anomalous image {image} has no mask: expected {expected}; add "
                                            f"the mask, move the image out of {defect_dir}, or load without "
                                            f"masks (masks='optional', or format='folder')")
                samples.append(Sample(str(image), None if mask is None else str(mask), cls, defect, 1))
    return samples
