""":func:`load_samples`: the samples of one split of a dataset in any supported layout.

The layouts are the ones the datasets ship with (``docs/data_formats.md``): MVTec-AD trees, VisA's
``split_csv/1cls.csv``, Real-IAD's per-class jsons and ADer's ``meta.json`` (the split file the released
Omni-AD code reads, github easyoo/Omni-AD ``data/ad_dataset.py``). Each layout has a small reader in
:mod:`omniad_lite.data.formats`; this module chooses one, filters classes and runs the checks that stay
cheap on full-size datasets (existence of roots, files and masks, keys, class names). Image sizes and
decodability are checked with PIL header reads when ``validate=True`` and, always, when an image is
decoded (:mod:`omniad_lite.data.images`).

Where we differ from the released code: it trusts its meta.json; we raise a one-line error naming the
file and the fix for every malformed entry instead of failing later inside a DataLoader worker.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .formats import folder, meta, mvtec, mvtec_ad2, realiad, visa
from .sample import SPLITS, Sample

# Detection order for "auto": native layouts first, ADer meta.json next (prepared roots have both), plain
# folders last (so an MVTec-AD tree, which also fits the folder tree, is read as "mvtec", masks required).
# MVTec AD 2 comes before MVTec-AD: its classes also have train/good/.
FORMATS: dict[str, Any] = {"visa": visa, "realiad": realiad, "mvtec_ad2": mvtec_ad2, "mvtec": mvtec, "meta": meta,
                           "folder": folder}

FORMAT_NAMES = ("mvtec", "mvtec_ad2", "visa", "realiad", "meta", "folder", "auto")
MASK_MODES = ("required", "optional")


def detect_format(root: str | Path) -> str | None:
    """Name of the layout ``root`` is in (``"visa"``, ``"realiad"``, ``"mvtec"``, ``"meta"``, ``"folder"``), or None."""
    root = Path(root)
    for name, module in FORMATS.items():
        if module.looks_like(root):
            return name
    return None


def _check_root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"dataset root {root} does not exist; download/extract the dataset there (see data_scripts/) "
            f"or pass root=None for the demo dataset")
    if not root.is_dir():
        raise NotADirectoryError(f"dataset root {root} is a file; pass the extracted folder "
                                 f"(data_scripts/prepare_*.py can extract archives)")
    return root.resolve()


def resolve_format(root: Path, format: str) -> str:
    """Check that ``root`` is in ``format`` (or detect it for ``"auto"``); return the concrete name."""
    if format not in FORMAT_NAMES:
        raise ValueError(f"unknown dataset format {format!r}; use one of {', '.join(FORMAT_NAMES)}")
    formats = FORMATS
    if format == "auto":
        found = detect_format(root)
        if found is None:
            looked = "; ".join(f"{m.EXPECTED} ({name})" for name, m in formats.items())
            raise ValueError(f"could not detect the dataset format of {root}: looked for {looked}. "
                             f"Check the root folder or pass format= explicitly")
        return found
    module = formats[format]
    if not module.looks_like(root):
        other = detect_format(root)
        hint = f"it looks like format={other!r}" if other else "it matches no known layout"
        raise ValueError(f"{root} is not a {format!r} root: expected {root}/{module.EXPECTED} ({hint}); "
                         f"fix the root or the format")
    return format


def load_samples(root: str | Path, format: str = "auto", split: str = "train",
                 classes: list[str] | None = None, *, validate: bool = False, **options: Any) -> list[Sample]:
    """Read the samples of one split of a dataset.

    Args:
        root: dataset root as the dataset ships it (see ``docs/data_formats.md``).
        format: ``"mvtec"`` (also any custom data in the MVTec tree layout), ``"mvtec_ad2"``, ``"visa"``, ``"realiad"``,
            ``"meta"`` (ADer meta.json), ``"folder"`` (your own images: flat ``good/`` + ``bad/`` or a
            ``<class>/train/good`` tree, masks optional) or ``"auto"`` (detect).
        split: ``"train"`` or ``"test"``; ``"validation"`` too for formats that ship one (``"mvtec_ad2"``).
        classes: class names to keep (``None``: all classes found). Unknown names raise.
        validate: also open every image and mask header (PIL, no decoding) to check readability and that
            each mask has its image's size. Costs one header read per file.
        **options: format options. VisA: ``split_file`` (default ``split_csv/1cls.csv``). Real-IAD:
            ``resolution`` (``realiad_256``), ``json_dir`` (``realiad_jsons/realiad_jsons``), ``views``
            (camera views 1-5 to keep, default all). meta: ``meta_file`` (``meta.json``). folder:
            ``test_fraction`` (flat layout, share of ``good/`` kept for testing, 0.2), ``split_seed`` (0).
            Every format: ``masks`` — ``"required"`` (the benchmark formats' default: an anomalous image
            without its mask raises, so a benchmark with a lost mask fails loudly) or ``"optional"`` (the
            folder format's default: such an image keeps ``mask_path=None``; only image metrics use it).

    Returns:
        Samples sorted by class, then image path.
    """
    root = _check_root(root)
    name = resolve_format(root, format)
    module = FORMATS[name]
    splits = SPLITS + getattr(module, "EXTRA_SPLITS", ())
    if split not in splits:
        raise ValueError(f"split={split!r} is not one of {splits} (format {name!r})")
    masks = options.pop("masks", "optional" if name == "folder" else "required")
    if masks not in MASK_MODES:
        raise ValueError(f"masks={masks!r} must be one of {MASK_MODES}")
    valid = module.list_classes(root, **options)
    if not valid:
        raise ValueError(f"no classes found in {root} (format {name!r}): expected {module.EXPECTED}")
    if classes is None:
        chosen = list(valid)
    else:
        if isinstance(classes, str):
            classes = [classes]
        unknown = [c for c in classes if c not in valid]
        if unknown:
            raise ValueError(f"unknown class(es) {unknown} in {root}; valid classes: {', '.join(valid)}")
        chosen = list(dict.fromkeys(classes))
    samples = module.read(root, split, chosen, masks_required=masks == "required", **options)
    counts = Counter(s.cls_name for s in samples)
    empty = [c for c in chosen if counts[c] == 0]
    if empty:
        raise ValueError(f"class(es) {empty} have no {split} images in {root} (format {name!r}); add images "
                         f"or leave these classes out with classes=[...]")
    for s in samples:
        if s.label == 1 and s.mask_path is None and masks == "required":
            raise ValueError(f"anomalous image {s.image_path} has no mask; add its ground-truth mask, move it "
                             f"out of the dataset or load with masks='optional'")
    if validate:
        from .images import check_pair
        for s in samples:
            check_pair(s.image_path, s.mask_path)
    return sorted(samples, key=lambda s: (s.cls_name, s.image_path))
