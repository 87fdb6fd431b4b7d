"""MVTec AD 2 tree layout (Heckler-Kram et al., "The MVTec AD 2 Dataset", arXiv 2503.21622, 2025).

The layout follows the dataset authors' public loader (``mvtec_ad_2_public_offline.py`` in their
``MVTecAD2_public_code_utils``) and anomalib's ``MVTecAD2`` datamodule::

    <root>/<class>/train/good/*.png
    <root>/<class>/validation/good/*.png                       normal images, used for the thresholds
    <root>/<class>/test_public/good/*.png
    <root>/<class>/test_public/bad/*.png
    <root>/<class>/test_public/ground_truth/bad/<stem>_mask.png   (0 / 255, the mask of test_public/bad/<stem>.png)
    <root>/<class>/test_private/*.png                          no ground truth: scored by the authors' server
    <root>/<class>/test_private_mixed/*.png                    the same, under changed lighting

The kit's splits map onto it: ``"train"`` is ``train/good``, ``"validation"`` is ``validation/good`` (the
factory serves it as the held-out ``"val"`` split, so thresholds come from these normal images and no training
image is held out), ``"test"`` is ``test_public`` (``good`` normal, ``bad`` anomalous with masks). The private
splits have no labels and are never a dataset split: :func:`private_images` lists them for ``predict`` and
``omniad-lite submission``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..sample import NORMAL_DEFECT, Sample
from . import is_image, reject_options

CLASSES = ("can", "fabric", "fruit_jelly", "rice", "sheet_metal", "vial", "wallplugs", "walnuts")
SPLIT_DIRS = {"train": "train", "validation": "validation", "test": "test_public"}
EXTRA_SPLITS = ("validation",)  # splits beyond train/test that load_samples accepts for this format
VALIDATION_SPLIT = "validation"  # the factory's "val": the dataset's own normal validation images
PRIVATE_SPLITS = ("test_private", "test_private_mixed")
BAD, GROUND_TRUTH, MASK_SUFFIX = "bad", "ground_truth", "_mask"
EXPECTED = "<class>/train/good/ and <class>/test_public/ (MVTec AD 2 tree)"
DATASET_PAGE = "https://www.mvtec.com/company/research/datasets/mvtec-ad-2"


def looks_like(root: Path) -> bool:
    return any((d / "train").is_dir() and (d / "test_public").is_dir() for d in root.iterdir() if d.is_dir())


def list_classes(root: Path, **options: Any) -> list[str]:
    reject_options("mvtec_ad2", options)
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and ((d / "train").is_dir() or (d / "test_public").is_dir()))


def mask_path(cls_dir: Path, image: Path) -> Path:
    """Where the mask of ``test_public/bad/<stem>.png`` lives."""
    return cls_dir / SPLIT_DIRS["test"] / GROUND_TRUTH / BAD / f"{image.stem}{MASK_SUFFIX}.png"


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image(p)) if folder.is_dir() else []


def read(root: Path, split: str, classes: list[str], *, masks_required: bool = True,
         **options: Any) -> list[Sample]:
    reject_options("mvtec_ad2", options)
    samples = []
    for cls in classes:
        split_dir = root / cls / SPLIT_DIRS[split]
        samples += [Sample(str(p), None, cls, NORMAL_DEFECT, 0) for p in _images(split_dir / NORMAL_DEFECT)]
        if split != "test":
            continue
        for image in _images(split_dir / BAD):
            mask = mask_path(root / cls, image)
            if not mask.is_file():
                if masks_required:
                    raise FileNotFoundError(f"anomalous image {image} has no mask: expected {mask}; re-extract "
                                            f"MVTec AD 2, or load with masks='optional'")
                mask = None
            samples.append(Sample(str(image), None if mask is None else str(mask), cls, BAD, 1))
    return samples


def private_images(root: str | Path, split: str, classes: list[str] | None = None) -> dict[str, list[Path]]:
    """The images of a private split, per class: ``{class: [<root>/<class>/<split>/*.png, ...]}``.

    Raises:
        ValueError: ``split`` is not a private split, a class is unknown, or a class has no image there.
    """
    if split not in PRIVATE_SPLITS:
        raise ValueError(f"split={split!r} is not a private MVTec AD 2 split; use one of {', '.join(PRIVATE_SPLITS)}")
    root = Path(root).expanduser()
    if not root.is_dir() or not looks_like(root):
        raise ValueError(f"{root} is not an MVTec AD 2 root: expected {root}/{EXPECTED}; pass the folder that "
                         f"holds can/, fabric/, ... (data_scripts/prepare_mvtec_ad2.py finds it)")
    valid = list_classes(root)
    unknown = [c for c in classes or [] if c not in valid]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown} in {root}; valid classes: {', '.join(valid)}")
    out = {}
    for cls in classes or valid:
        found = _images(root / cls / split)
        if not found:
            raise ValueError(f"no {split} images in {root / cls / split}: extract the full MVTec AD 2 archive "
                             f"(the private splits ship with it), or leave the class out")
        out[cls] = found
    return out
