"""MVTec AD 2 submissions: write the private splits' anomaly maps and masks, and check a folder before upload.

The layout and file rules are those of the dataset authors' public code (``MVTecAD2_public_code_utils``:
``mvtec_ad_2_public_offline.py`` builds the output paths, ``utils.py`` is their pre-upload checker)::

    <out>/anomaly_images/<class>/<split>/<stem>.tiff              one float16, single-channel map per image
    <out>/anomaly_images_thresholded/<class>/<split>/<stem>.png   one single-channel PNG, values 0 and 255

``<split>`` is ``test_private`` or ``test_private_mixed`` and ``<stem>`` the image's own name
(``000_regular``, ``000_mixed``, ...). Nothing else may be in the folder. What we add to the authors' checks:
each map and mask must have its image's size (``height × width`` of ``<root>/<class>/<split>/<stem>.png``) and
every map value must be finite.

Maps are brought to each image's full size the way ``predict`` does (:mod:`.predict`: the S×S map resized
bilinearly to H×W, ``align_corners=False``); a mask pixel is 255 where the full-size map is ``>=`` the class's
threshold, ``mean + 3·std`` of its normal validation maps (:mod:`.mvtec_ad2`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

MAPS, MASKS = "anomaly_images", "anomaly_images_thresholded"
MAP_SUFFIX, MASK_SUFFIX = ".tiff", ".png"
MAP_DTYPE = np.float16  # what the authors' checker requires
MASK_VALUES = (0, 255)


class SubmissionError(ValueError):
    """A submission folder that the evaluation server would reject (one line: the file and the fix)."""


def write_submission(run_dir, split: str, out_dir, *, data_root: str | None = None, device="auto",
                     batch_size: int = 16, progress: bool = True) -> dict:
    """Predict every image of a private split with a run; write its maps and masks under ``out_dir``.

    Args:
        run_dir: a run trained on MVTec AD 2 (``data.format=mvtec_ad2``).
        split: ``"test_private"`` or ``"test_private_mixed"``; call again for the other (same ``out_dir``).
        out_dir: the submission folder (created; holds only the two trees).
        data_root: the MVTec AD 2 root (default: the run's ``data.root``).
        device, batch_size, progress: as for ``predict``.

    Returns:
        ``{"images": n, "thresholds": {class: value}, "out": Path}``.
    """
    import tifffile
    from PIL import Image

    from ..data.formats.mvtec_ad2 import private_images
    from ..run import load_run
    from .mvtec_ad2 import validation_thresholds
    from .predict import iter_predictions

    from ..env import resolve_device

    device = resolve_device(device)
    loaded = load_run(run_dir, device=device)
    cfg = loaded.config if data_root is None else loaded.config.with_overrides({"data.root": str(data_root)})
    if cfg.data.root is None:
        raise ValueError(f"run {run_dir} has no data.root; pass --data-root (the MVTec AD 2 folder)")
    images = private_images(cfg.data.root, split, cfg.data.classes)  # checks the split and the root first
    out = _prepare_out(Path(out_dir))
    thresholds = validation_thresholds(loaded.model, cfg, device=device, batch_size=batch_size, progress=progress)
    n = 0
    for cls, paths in images.items():
        for sub in (MAPS, MASKS):
            (out / sub / cls / split).mkdir(parents=True, exist_ok=True)
        for pred in iter_predictions(loaded.model, [str(p) for p in paths], device=device, batch_size=batch_size,
                                     progress=progress):
            if pred.error is not None:
                raise ValueError(f"cannot predict {pred.path}: {pred.error}")
            stem = Path(pred.path).stem
            amap = pred.anomaly_map  # (H, W) float32 at the image's own size
            tifffile.imwrite(out / MAPS / cls / split / f"{stem}{MAP_SUFFIX}", amap.astype(MAP_DTYPE))
            mask = np.where(amap >= thresholds[cls], MASK_VALUES[1], MASK_VALUES[0]).astype(np.uint8)  # (H, W)
            Image.fromarray(mask, mode="L").save(out / MASKS / cls / split / f"{stem}{MASK_SUFFIX}")
            n += 1
    return {"images": n, "thresholds": thresholds, "out": out}


def _prepare_out(out: Path) -> Path:
    if out.exists():
        other = sorted(p.name for p in out.iterdir() if p.name not in (MAPS, MASKS))
        if other:
            raise SubmissionError(f"{out} holds {other[0]!r}: a submission folder may hold only {MAPS}/ and "
                                  f"{MASKS}/; choose an empty or new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _compare(found: set[str], expected: set[str], folder: Path, what: str) -> None:
    missing, extra = sorted(expected - found), sorted(found - expected)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SubmissionError(f"missing {what} {folder / missing[0]}{more}; write it with omniad-lite submission")
    if extra:
        raise SubmissionError(f"unexpected {folder / extra[0]} in the submission; remove it (the server accepts only "
                              f"the {what}s of the dataset's images)")


def _check_map(path: Path, size_wh: tuple[int, int]) -> None:
    import tifffile

    try:
        arr = tifffile.imread(path)
    except Exception as e:  # not a TIFF, truncated, ...
        raise SubmissionError(f"cannot read anomaly map {path} ({type(e).__name__}); write it again") from None
    w, h = size_wh
    if arr.ndim != 2 or arr.dtype != MAP_DTYPE:
        raise SubmissionError(f"anomaly map {path} is {arr.dtype} with shape {arr.shape}; it must be a single-channel "
                              f"float16 TIFF (numpy.float16, shape (H, W))")
    if arr.shape != (h, w):
        raise SubmissionError(f"anomaly map {path} is {arr.shape[1]}x{arr.shape[0]} but its image is {w}x{h}; maps "
                              f"must have their image's full size")
    if not np.isfinite(arr).all():
        raise SubmissionError(f"anomaly map {path} has NaN or inf values (float16 overflows above 65504); rescale it")


def _check_mask(path: Path, size_wh: tuple[int, int]) -> None:
    from PIL import Image

    try:
        arr = np.asarray(Image.open(path))
    except Exception as e:
        raise SubmissionError(f"cannot read thresholded map {path} ({type(e).__name__}); write it again") from None
    w, h = size_wh
    if arr.ndim != 2 or arr.shape != (h, w):
        raise SubmissionError(f"thresholded map {path} has shape {arr.shape}; it must be a single-channel PNG of its "
                              f"image's size ({h}, {w})")
    if not np.isin(arr, MASK_VALUES).all():
        raise SubmissionError(f"thresholded map {path} has values other than 0 and 255; set normal pixels to 0 and "
                              f"anomalous ones to 255")


def check_submission(out_dir, data_root) -> dict:
    """Validate a submission folder against the MVTec AD 2 root it was made from; raise :class:`SubmissionError`.

    Checks: only ``anomaly_images/`` and ``anomaly_images_thresholded/`` at the top; every class of the root in
    both, nothing else; in each class the same private split folders in both trees (at least one); in each split
    exactly one ``<stem>.tiff`` and one ``<stem>.png`` per image of ``<root>/<class>/<split>/``; maps float16,
    single-channel, finite, of the image's size; masks single-channel, values 0/255, of the image's size.

    Returns:
        ``{"images": n checked, "splits": [...], "complete": bool}`` — ``complete`` when both private splits are
        present for every class (the server expects both).
    """
    from ..data.formats.mvtec_ad2 import PRIVATE_SPLITS, list_classes, private_images
    from ..data.images import header_size

    out, root = Path(out_dir), Path(data_root)
    if not out.is_dir():
        raise SubmissionError(f"submission folder {out} does not exist; write it with omniad-lite submission --run")
    _compare(_names(out), {MAPS, MASKS}, out, "folder")
    classes = list_classes(root) if root.is_dir() else []
    if not classes:
        raise SubmissionError(f"{root} is not an MVTec AD 2 root (no <class>/train/ folders); pass --data-root")
    n, splits = 0, set()
    for sub in (MAPS, MASKS):
        _compare(_names(out / sub), set(classes), out / sub, "class folder")
    for cls in classes:
        present = (_names(out / MAPS / cls) | _names(out / MASKS / cls)) & set(PRIVATE_SPLITS)
        for sub in (MAPS, MASKS):
            _compare(_names(out / sub / cls), present, out / sub / cls, "split folder")
        if not present:
            raise SubmissionError(f"{out / MAPS / cls} holds no split folder; write test_private and "
                                  f"test_private_mixed with omniad-lite submission")
        for split in sorted(present):
            splits.add(split)
            images = private_images(root, split, [cls])[cls]
            for sub, suffix, check in ((MAPS, MAP_SUFFIX, _check_map), (MASKS, MASK_SUFFIX, _check_mask)):
                folder = out / sub / cls / split
                _compare(_names(folder), {p.stem + suffix for p in images}, folder, f"{suffix} file")
                for image in images:
                    check(folder / f"{image.stem}{suffix}", header_size(image))
            n += len(images)
    complete = all(_names(out / MAPS / c) == set(PRIVATE_SPLITS) for c in classes)
    return {"images": n, "splits": sorted(splits), "complete": complete, "classes": classes}
