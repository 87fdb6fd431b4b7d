"""Your own images: plain folders, masks optional (``docs/data_formats.md``, "Your own images").

Two layouts:

- **flat**, one class (named after the root folder): ``<root>/good/*`` normal images, optional
  ``<root>/bad/*`` anomalous ones (subfolders of ``bad/`` are defect types) and optional ``<root>/masks/*``
  (the mask of ``bad/<rel>/<stem>.<ext>`` is ``masks/<rel>/<stem>.png`` or ``<stem>_mask.png``). ``good/`` is
  split into train and test by a seeded permutation (option ``test_fraction``, default 0.2; ``split_seed``);
  the test split is those normal images plus every ``bad/`` image.
- **tree**, any number of classes: ``<root>/<class>/train/good/*`` and ``<root>/<class>/test/<any>/*``
  (``test/good`` normal, every other folder a defect type), masks as in MVTec-AD under
  ``<class>/ground_truth/<defect>/`` but optional. ``format="auto"`` detects an MVTec-AD tree as ``mvtec``
  (masks required there); a tree without masks loads with ``format="folder"``.

Images of any size and mode (grayscale, RGBA, 16-bit) are accepted; every file is checked here, from its
header, so bad input stops with one line naming the file and the fix before any training starts: a folder
without images, fewer than :data:`MIN_NORMAL_IMAGES` normal images in a class, a class without ``good/``,
unreadable or empty image files, a mask whose size differs from its image. Non-image files are skipped with
one note; mixed image sizes are allowed (all are resized to the network input) and stated once.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError, DataWarning, warn
from ..images import header_size
from ..sample import NORMAL_DEFECT, Sample
from . import IMAGE_EXTENSIONS, is_image, reject_options
from .mvtec import mask_for

GOOD, BAD, MASKS = "good", "bad", "masks"
EXPECTED = "good/ (flat folder) or <class>/train/good/ (folder tree)"
OPTIONS = ("test_fraction", "split_seed")
MIN_NORMAL_IMAGES = 10  # per class: enough to train a little and hold some out for the threshold
DEFAULT_TEST_FRACTION = 0.2  # flat layout: share of good/ kept for the test split
DEFAULT_SPLIT_SEED = 0


def looks_like(root: Path) -> bool:
    return (root / GOOD).is_dir() or any((d / "train" / GOOD).is_dir() for d in root.iterdir() if d.is_dir())


def is_flat(root: Path) -> bool:
    return (root / GOOD).is_dir()


def flat_class_name(root: Path) -> str:
    """The class of a flat folder: the root folder's name."""
    return root.name or "images"


_NOTED: set[str] = set()  # keys of the notes already given in this process


def list_classes(root: Path, **options: Any) -> list[str]:
    reject_options("folder", options, OPTIONS)
    if is_flat(root):
        return [flat_class_name(root)]
    return sorted(d.name for d in root.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and ((d / "train").is_dir() or (d / "test").is_dir()))


def note_once(key: str, message: str) -> None:
    """A :class:`~omniad_lite.errors.DataWarning` the first time this process sees ``key`` (one per folder,
    whichever split or call reads it)."""
    if key not in _NOTED:
        _NOTED.add(key)
        warn(message, DataWarning)


def _images_in(folder: Path, skipped: list[Path]) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); other visible files go to ``skipped``."""
    found = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        (found if is_image(p) else skipped).append(p)
    return found


def _require_images(folder: Path, images: list[Path], what: str) -> None:
    if not images:
        raise DataError(f"no images in {folder}: put the {what} there ({', '.join(IMAGE_EXTENSIONS)} files)")


def _check_files(root: Path, pairs: list[tuple[Path, Path | None]], skipped: list[Path]) -> None:
    """Header-check every image and mask: one error listing the unreadable ones, a note on skipped files
    and on mixed sizes."""
    bad: list[str] = []
    sizes: Counter = Counter()
    for image, mask in pairs:
        size = _readable(image, "image", bad)
        if size is not None:
            sizes[size] += 1
        if mask is not None and size is not None:
            msize = _readable(mask, "mask", bad)
            if msize is not None and msize != size:
                raise DataError(f"mask {mask} is {msize[0]}x{msize[1]} but its image {image} is {size[0]}x{size[1]}; "
                                 f"a mask must have its image's size: re-export the mask at the image's size")
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"{len(bad)} unreadable image file(s) under {root}: {bad[0]}{more}; delete or replace "
                         f"them, or move them out of the dataset folder")
    if skipped:
        note_once(f"skipped:{root}", f"skipped {len(skipped)} non-image file(s) under {root} (e.g. {skipped[0]}); "
                  f"only {', '.join(IMAGE_EXTENSIONS)} files are read")
    if len(sizes) > 1:
        common = ", ".join(f"{w}x{h}" for (w, h), _ in sizes.most_common(3))
        note_once(f"sizes:{root}", f"the images under {root} have {len(sizes)} different sizes (e.g. {common}); "
                  f"each is resized to the network input, and predict maps back to each image's own size")


def _readable(path: Path, what: str, bad: list[str]) -> tuple[int, int] | None:
    if path.stat().st_size == 0:
        bad.append(f"{path} (empty file, 0 bytes)")
        return None
    try:
        return header_size(path, what)
    except (RuntimeError, OSError):
        bad.append(f"{path} (not a readable {what})")
        return None


def _flat_mask(root: Path, image: Path) -> Path | None:
    rel = image.relative_to(root / BAD)
    folder = root / MASKS / rel.parent
    for candidate in (folder / f"{image.stem}.png", folder / f"{image.stem}_mask.png", folder / rel.name):
        if candidate.is_file():
            return candidate
    return None


def _split_fraction(options: dict[str, Any]) -> tuple[float, int]:
    fraction = options.get("test_fraction", DEFAULT_TEST_FRACTION)
    seed = options.get("split_seed", DEFAULT_SPLIT_SEED)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise DataError(f"folder option test_fraction={fraction!r} must be a number in [0, 1), e.g. 0.2")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"folder option split_seed={seed!r} must be an integer")
    return float(fraction), seed


def _read_flat(root: Path, split: str, masks_required: bool, options: dict[str, Any]) -> list[Sample]:
    fraction, seed = _split_fraction(options)
    unexpected = sorted(p.name for p in root.iterdir()
                        if not p.name.startswith(".") and (p.is_dir() and p.name not in (GOOD, BAD, MASKS)
                                                           or is_image(p)))
    if unexpected:
        raise DataError(f"unexpected {unexpected[0]!r} in the flat image folder {root}: normal images go in good/, "
                         f"anomalous ones in bad/ (subfolders per defect allowed), masks in masks/; move it")
    cls, skipped = flat_class_name(root), []
    good = _images_in(root / GOOD, skipped)
    _require_images(root / GOOD, good, "normal (defect-free) images")
    _require_minimum(cls, root / GOOD, len(good))
    order = np.random.default_rng(seed).permutation(len(good))
    n_test = int(round(fraction * len(good)))
    test_idx = set(order[:n_test].tolist())
    keep = [g for i, g in enumerate(good) if (i in test_idx) == (split == "test")]
    samples = [Sample(str(p), None, cls, NORMAL_DEFECT, 0) for p in keep]
    if split == "test" and (root / BAD).is_dir():
        for p in _images_in(root / BAD, skipped):
            rel = p.relative_to(root / BAD)
            mask = _flat_mask(root, p)
            _check_mask(p, mask, masks_required, root / MASKS / rel.parent / f"{p.stem}.png")
            samples.append(Sample(str(p), None if mask is None else str(mask), cls,
                                  rel.parts[0] if len(rel.parts) > 1 else BAD, 1))
    _check_files(root, [(Path(s.image_path), s.mask_path and Path(s.mask_path)) for s in samples], skipped)
    return samples


def _require_minimum(cls: str, folder: Path, n: int) -> None:
    if n < MIN_NORMAL_IMAGES:
        raise DataError(f"class {cls!r} has {n} normal image(s) in {folder}; at least {MIN_NORMAL_IMAGES} are "
                         f"needed to train and to hold some out for the threshold: add normal images")


def _check_mask(image: Path, mask: Path | None, masks_required: bool, expected: Path) -> None:
    if mask is None and masks_required:
        raise FileNotFoundError(f"anomalous image {image} has no mask: expected {expected}; add the mask or "
                                f"load with masks='optional'")


def _read_tree(root: Path, split: str, classes: list[str], masks_required: bool) -> list[Sample]:
    samples: list[Sample] = []
    skipped: list[Path] = []
    for cls in classes:
        good = root / cls / "train" / GOOD
        if not good.is_dir():
            raise DataError(f"class {cls!r} has no train/good/ folder ({good}): put its normal images there, "
                             f"or leave the class out with classes=[...]")
        if split == "train":
            others = sorted(d.name for d in (root / cls / "train").iterdir() if d.is_dir() and d.name != GOOD)
            if others:
                raise DataError(f"{root / cls / 'train'} has folder(s) {others} besides good/: training uses "
                                 f"normal images only; move anomalous images to {root / cls / 'test'}/<defect>/")
            images = _images_in(good, skipped)
            _require_images(good, images, "normal (defect-free) images")
            _require_minimum(cls, good, len(images))
            samples += [Sample(str(p), None, cls, NORMAL_DEFECT, 0) for p in images]
            continue
        test = root / cls / "test"
        for defect_dir in sorted(d for d in test.iterdir() if d.is_dir()) if test.is_dir() else []:
            defect = defect_dir.name
            for p in _images_in(defect_dir, skipped):
                if defect == NORMAL_DEFECT:
                    samples.append(Sample(str(p), None, cls, NORMAL_DEFECT, 0))
                    continue
                mask = mask_for(root / cls, defect, p)
                _check_mask(p, mask, masks_required, root / cls / "ground_truth" / defect / f"{p.stem}_mask.png")
                samples.append(Sample(str(p), None if mask is None else str(mask), cls, defect, 1))
    _check_files(root, [(Path(s.image_path), s.mask_path and Path(s.mask_path)) for s in samples], skipped)
    return samples


def read(root: Path, split: str, classes: list[str], *, masks_required: bool = False,
         **options: Any) -> list[Sample]:
    reject_options("folder", options, OPTIONS)
    if is_flat(root):
        return _read_flat(root, split, masks_required, options)
    return _read_tree(root, split, classes, masks_required)
