"""Decoding and resizing of images and masks, with one clear error per bad file.

Preprocessing follows docs/method.md ("The pipeline", step 1; released configs of github easyoo/Omni-AD): resize to
S×S with bilinear interpolation, no augmentation (the released transform's centre crop of S follows a resize
to S×S, so it never crops and is left out). Masks are read as the released data pipeline reads them
(``data/ad_dataset.py`` and ``trainer/omniad_trainer.py``): any non-zero pixel of the file is anomalous (which
covers VisA's 0/1-valued and MVTec's 0/255-valued masks), the 0/255 mask is resized with PIL's bilinear filter
(torchvision's ``Resize`` on a PIL image), and a pixel stays anomalous when its resized value
``/ 255 > 0.5``, i.e. ``>= 128`` — each output pixel is anomalous when most of the area it covers is.
Grayscale, palette and RGBA images become RGB (alpha dropped, as PIL's ``convert("RGB")``).

High-bit-depth images are converted with a fixed scale, the same for every image, so an image's brightness
never depends on its own content:

- integer images (PIL modes ``I;16*`` and ``I``, e.g. 16-bit PNG/TIFF) are read as 16-bit:
  ``value * 255 / 65535``, rounded (``I`` values outside 0..65535 are clipped);
- float images (mode ``F``, e.g. 32-bit float TIFF) are read as 0..1: ``value * 255``, rounded and clipped.

Orientation: every image and mask is first turned the way viewers show it, by its EXIF orientation tag
(``0x0112``, values 1–8; :func:`upright`, Pillow's ``ImageOps.exif_transpose``), so a phone's portrait photo
stored sideways with orientation 6 is read portrait. Sizes (:func:`header_size`) are those of the turned image.

Large JPEGs are decoded at a reduced size (Pillow's ``Image.draft``: the JPEG decoder's DCT scaling by 1/2,
1/4 or 1/8) when the target side S is much smaller than the photo: the largest reduction that keeps each side
at least :data:`DRAFT_MARGIN`·S is used, then the bilinear resize runs as usual. The result equals the full
decode's up to a small difference (``tests/test_data_orientation.py`` bounds it on natural photos: mean absolute
difference below :data:`DRAFT_MEAN_TOLERANCE` and every value within :data:`DRAFT_MAX_TOLERANCE` grey levels of
255; measured about 0.3 and at most 5), at a fraction of the time and memory
(``benchmarks/bench_large_photos.py``, docs/speed.md). ``load_image(..., reduced=False)`` decodes in full.
:data:`DECODE_VERSION` names this decoding rule; the image and teacher-feature caches are keyed by it.

Any file PIL cannot open or decode — not an image, truncated, or larger than Pillow's decompression-bomb
limit (``PIL.Image.MAX_IMAGE_PIXELS``, 89.5 M pixels; twice that raises) — gives one ``RuntimeError`` line
naming the file and the fix.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError, ImageReadError

UINT16_MAX = 65535  # integer images are read as 16-bit: 0..65535 -> 0..255
UINT8_MAX = 255
FLOAT_RANGE = 1.0  # float images are read as 0..1 -> 0..255
_INT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
DECODE_VERSION = 2  # the decoding rule, part of every cache key (2: EXIF orientation, reduced-size JPEG decoding)
EXIF_ORIENTATION = 0x0112  # EXIF tag: 1 stored upright, 2-8 mirrored and/or rotated
TURNED = (2, 3, 4, 5, 6, 7, 8)  # orientations that need a transposition
SWAPS_SIDES = (5, 6, 7, 8)  # orientations whose upright image has width and height exchanged
DRAFT_MARGIN = 2  # reduced-size JPEG decoding keeps each side >= DRAFT_MARGIN * the target side
DRAFT_MEAN_TOLERANCE = 1.0  # tested bound on the mean |reduced - full| of a resized photo, grey levels of 255
DRAFT_MAX_TOLERANCE = 8  # tested bound on the largest |reduced - full| of one pixel value


def _reason(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]

MASK_ON = 255  # value of an anomalous pixel before the resize
MASK_KEEP_ABOVE = 127  # released: ToTensor (÷ 255) then > 0.5, i.e. resized uint8 value >= 128


def _open(path: str | Path, what: str) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist; re-extract the dataset or fix its split file") \
            from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"cannot read {what} {path} ({_reason(e)}); resize the image, or raise "
                           f"PIL.Image.MAX_IMAGE_PIXELS if you trust the file") from None
    except Exception as e:  # UnidentifiedImageError, MemoryError, OSError, SyntaxError, struct errors, ...
        raise ImageReadError(f"cannot read {what} {path} ({_reason(e)}); the file is corrupt or not an image: "
                           f"re-download/re-extract it") from None


def orientation(im: Image.Image) -> int:
    """The EXIF orientation of an opened image (1 when it has none or the EXIF block cannot be parsed)."""
    try:
        value = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block: shown as stored by viewers too
        return 1
    return value if isinstance(value, int) and value in range(1, 9) else 1


def upright(im: Image.Image) -> Image.Image:
    """``im`` turned by its EXIF orientation, as viewers show it (the same image when there is nothing to turn)."""
    return ImageOps.exif_transpose(im) if orientation(im) in TURNED else im


def to_8bit(im: Image.Image) -> Image.Image:
    """A 16-bit/32-bit integer or float image → 8-bit ``L`` with the module's fixed scales; others unchanged."""
    if im.mode in _INT_MODES:
        arr = np.asarray(im, dtype=np.float64)  # (H, W)
        return Image.fromarray(np.clip(np.rint(arr * (UINT8_MAX / UINT16_MAX)), 0, UINT8_MAX).astype(np.uint8))
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)  # (H, W)
        arr = np.nan_to_num(arr, nan=0.0, posinf=FLOAT_RANGE, neginf=0.0)
        return Image.fromarray(np.clip(np.rint(arr * (UINT8_MAX / FLOAT_RANGE)), 0, UINT8_MAX).astype(np.uint8))
    return im


def header_size(path: str | Path, what: str = "image") -> tuple[int, int]:
    """``(width, height)`` of the upright image (EXIF orientation applied) from the file header only."""
    with _open(path, what) as im:
        w, h = im.size
        return (h, w) if orientation(im) in SWAPS_SIDES else (w, h)


def check_pair(image_path: str | Path, mask_path: str | Path | None) -> tuple[int, int]:
    """Check, from headers, that the image is readable and its mask (if any) has the same size.

    Returns:
        The image size ``(width, height)``.
    """
    size = header_size(image_path, "image")
    if mask_path is not None:
        msize = header_size(mask_path, "mask")
        if msize != size:
            raise DataError(f"mask {mask_path} is {msize[0]}x{msize[1]} but its image {image_path} is "
                             f"{size[0]}x{size[1]}; a mask must have its image's size (re-export the mask)")
    return size


def _reduce(im: Image.Image, size: int) -> None:
    """Ask the JPEG decoder for the smallest DCT-scaled size whose sides stay >= ``DRAFT_MARGIN * size``."""
    need = DRAFT_MARGIN * size
    if im.format == "JPEG" and min(im.size) >= 2 * need:
        im.draft(im.mode, (need, need))


def _decode(path: str | Path, what: str, mode: str, reduce_to: int | None = None) -> Image.Image:
    im = _open(path, what)
    try:
        if reduce_to is not None:
            _reduce(im, reduce_to)
        im.load()  # full decode: raises on truncated files
        im = upright(im)
    except Exception as e:
        raise ImageReadError(f"cannot decode {what} {path} ({_reason(e)}); the file is truncated or corrupt: "
                           f"re-download/re-extract it") from None
    if mode == "RGB" and im.mode != "RGB":
        im = to_8bit(im).convert("RGB")
    elif mode == "L":  # binary mask: any non-zero pixel (any colour channel, alpha ignored) is anomalous
        arr = np.asarray(im)
        if arr.ndim == 3:
            arr = arr[..., :3].any(axis=2)  # (H, W)
        im = Image.fromarray(((arr > 0) * MASK_ON).astype(np.uint8))
    return im


def preprocess_image(im: Image.Image, size: int) -> np.ndarray:
    """A PIL image → upright (EXIF), RGB, resized to ``size``² (bilinear); ``(S, S, 3)`` uint8."""
    im = to_8bit(upright(im)).convert("RGB").resize((size, size), Image.BILINEAR)
    return np.array(im, dtype=np.uint8)  # (S, S, 3), writable copy


def load_image(path: str | Path, size: int, *, reduced: bool = True) -> np.ndarray:
    """Decode an image file (upright; large JPEGs at a reduced size unless ``reduced=False``) and
    :func:`preprocess_image` it; ``(S, S, 3)`` uint8."""
    return preprocess_image(_decode(path, "image", "RGB", size if reduced else None), size)


def decode_image(path: str | Path):
    """Decode an image file at its original size, upright and RGB like :func:`load_image`: a PIL image."""
    return _decode(path, "image", "RGB")


def load_mask(path: str | Path | None, size: int, image_size_wh: tuple[int, int] | None = None,
              image_path: str | Path | None = None) -> np.ndarray:
    """Decode a mask, resize (bilinear) and binarise at ½ to {0, 1}; ``(S, S)`` uint8, zeros when ``path`` is None.

    Args:
        path: mask file, or ``None`` for a normal image.
        size: output side S.
        image_size_wh: the image's original ``(width, height)``; when given, a different mask size raises.
        image_path: the image's path, named in that error.
    """
    if path is None:
        return np.zeros((size, size), dtype=np.uint8)
    im = _decode(path, "mask", "L")
    if image_size_wh is not None and im.size != tuple(image_size_wh):
        raise DataError(f"mask {path} is {im.size[0]}x{im.size[1]} but its image {image_path} is "
                         f"{image_size_wh[0]}x{image_size_wh[1]}; a mask must have its image's size")
    im = im.resize((size, size), Image.BILINEAR)
    return (np.asarray(im) > MASK_KEEP_ABOVE).astype(np.uint8)  # (S, S)


def load_pair(image_path: str | Path, mask_path: str | Path | None, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode, check and resize an image and its mask: ``(S, S, 3)`` and ``(S, S)`` uint8 arrays."""
    original = header_size(image_path, "image")
    image = load_image(image_path, size)
    mask = load_mask(mask_path, size, original, image_path)
    return image, mask
