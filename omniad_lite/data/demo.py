"""The offline demo dataset: an MVTec-AD-layout dataset made from photographs shipped in scikit-image.

No download: the sources are files inside the scikit-image wheel (``skimage.data``; brick, grass and gravel
are CC0 textures from CC0Textures/DeviantArt, coffee is CC0 by Rachel Michetti, coins are from the Brooklyn
Museum collection). Each class is one source photograph:

=========  ========  ===========  =================================================
class      kind      channels     normal variation
=========  ========  ===========  =================================================
brick      texture   grayscale    random crop position/scale, flips, lighting
grass      texture   RGB (tint)   random crop position/scale, flips/rot90, lighting
gravel     texture   RGB (tint)   random crop position/scale, flips/rot90, lighting
coffee     object    RGB          small shift and scale around the cup, lighting
coins      object    grayscale    small shift and scale around the tray, lighting
=========  ========  ===========  =================================================

Defects (each written with a pixel-exact mask: the mask is exactly the set of pixels the defect changed):
``scratch`` (a ~5 px bright or dark curve), ``stain`` (a translucent blob with an irregular edge: dark on
bright ground, pale on dark ground), ``patch`` (textures: a blob of another texture at the local mean, with
twice the local contrast) and ``missing`` (objects: a blurred blob, darker, or paler on dark ground, as if a
piece were worn off). Strengths are chosen so defects stay visible at the demo preset's 128 px input.
Lighting jitter is gain, gamma, a small colour cast and sensor noise. Everything is drawn from
``numpy.random.default_rng([seed, class index])``, so the same seed writes byte-identical PNG files.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import skimage
from PIL import Image
from scipy import ndimage
from skimage import data as skdata
from skimage import draw

from ..errors import DataError
from ..files import remove_stale_temps, temp_path
from .cache import default_cache_dir
from .demo_lattice import write_lattice

DEMO_VERSION = 3  # names the cache folder; any change to this file regenerates it (see demo_root)
IMAGE_SIDE = 192  # px, side of every demo image
NUM_TRAIN_GOOD = 36
NUM_TEST_GOOD = 10
NUM_PER_DEFECT = 5
STAMP_FILE = "demo.json"
DEFECT_MARGIN = 0.12  # defects stay this fraction of the side away from the border
TEXTURE_CROP = {"brick": (200, 300), "grass": (200, 300), "gravel": (240, 272)}  # px, square crop of the
# 512² source; gravel's stones vary so much that a narrower scale range keeps its normal images alike
OBJECT_SHIFT = 0.04  # max shift of an object crop, as a fraction of the crop side
OBJECT_SCALE = (0.95, 1.0)
GAIN = (0.88, 1.12)
GAMMA = (0.85, 1.15)
COLOUR_CAST = 0.03
NOISE_STD = 1.5  # grey levels
# Defect strengths: visible at the demo preset's 128 px input, as MVTec-AD defects are at 256 px.
SCRATCH_STRENGTH = (0.7, 0.9)  # fraction of the way to white/black
SCRATCH_DILATION = 2  # binary dilations of the 1-px curve
STAIN_RADIUS = (10, 20)  # px
STAIN_OPACITY = (0.5, 0.75)
PATCH_RADIUS = (12, 22)
PATCH_CONTRAST = 2.0  # foreign texture contrast relative to the surroundings
MISSING_RADIUS = (10, 20)
MISSING_DARKEN = (0.4, 0.55)
MISSING_BRIGHTEN = (1.8, 2.2)
DARK_SURROUNDINGS = 100.0  # grey level under which a stain is pale and a hole brighter
PNG_COMPRESSION = 1  # zlib level: fast to write, lossless like every level

# name -> (source, kind, tint or None for grayscale output, object crop (cx, cy, side) or None, defects)
CLASSES = {
    "brick": ("brick", "texture", None, None, ("scratch", "stain", "patch")),
    "grass": ("grass", "texture", (0.55, 0.85, 0.35), None, ("scratch", "stain", "patch")),
    "gravel": ("gravel", "texture", (0.95, 0.85, 0.7), None, ("scratch", "stain", "patch")),
    "coffee": ("coffee", "object", "rgb", (290, 200, 380), ("scratch", "stain", "missing")),
    "coins": ("coins", "object", None, (192, 151, 290), ("scratch", "stain", "missing")),
}
EXTRA_CLASSES = ("lattice",)  # opt-in (make_demo_dataset(extra_classes=...)): never in the default demo
FOREIGN_TEXTURE = {"brick": "gravel", "grass": "brick", "gravel": "grass"}
DEFECT_REGION = {"texture": 0.5, "object": 0.32}  # defects within this half-width of the centre (fraction)


def _source(name: str) -> np.ndarray:
    return getattr(skdata, name)()  # (H, W) or (H, W, 3) uint8, shipped in the wheel


# -- normal images ---------------------------------------------------------------------------------------
def _crop_box(rng: np.random.Generator, shape: tuple[int, ...], name: str, kind: str, obj: tuple | None) -> tuple:
    h, w = shape[:2]
    if kind == "texture":
        side = int(rng.integers(*TEXTURE_CROP[name]))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        return x0, y0, side
    cx, cy, side = obj
    side = int(side * rng.uniform(*OBJECT_SCALE))
    cx += int(rng.uniform(-OBJECT_SHIFT, OBJECT_SHIFT) * side)
    cy += int(rng.uniform(-OBJECT_SHIFT, OBJECT_SHIFT) * side)
    x0 = int(np.clip(cx - side // 2, 0, w - side))
    y0 = int(np.clip(cy - side // 2, 0, h - side))
    return x0, y0, side


def _normal(rng: np.random.Generator, src: np.ndarray, name: str) -> np.ndarray:
    """A defect-free float image ``(S, S, C)`` in [0, 255] (C = 1 grayscale or 3)."""
    _, kind, tint, obj, _ = CLASSES[name]
    x0, y0, side = _crop_box(rng, src.shape, name, kind, obj)
    crop = Image.fromarray(src[y0:y0 + side, x0:x0 + side]).resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR)
    img = np.asarray(crop, dtype=np.float32)
    img = img[..., None] if img.ndim == 2 else img  # (S, S, C)
    if kind == "texture":
        if name != "brick":  # brick courses are horizontal: flips only
            img = np.rot90(img, int(rng.integers(4)))
        if rng.random() < 0.5:
            img = img[:, ::-1]
    if isinstance(tint, tuple):
        img = img * np.asarray(tint, dtype=np.float32)  # (S, S, 3)
    gain, gamma = rng.uniform(*GAIN), rng.uniform(*GAMMA)
    img = 255.0 * (np.clip(img * gain, 0, 255) / 255.0) ** gamma
    if img.shape[2] == 3:
        img = img * (1 + rng.uniform(-COLOUR_CAST, COLOUR_CAST, size=3)).astype(np.float32)
    return np.ascontiguousarray(img, dtype=np.float32)


# -- defect shapes ---------------------------------------------------------------------------------------
def _centre(rng: np.random.Generator, kind: str) -> tuple[float, float]:
    half = DEFECT_REGION[kind] * IMAGE_SIDE
    lo, hi = max(DEFECT_MARGIN * IMAGE_SIDE, IMAGE_SIDE / 2 - half), min((1 - DEFECT_MARGIN) * IMAGE_SIDE,
                                                                         IMAGE_SIDE / 2 + half)
    return rng.uniform(lo, hi), rng.uniform(lo, hi)


def _blob(rng: np.random.Generator, kind: str, radius: tuple[float, float]) -> np.ndarray:
    """Irregular filled blob: a circle whose radius wobbles with 3 random harmonics. ``(S, S)`` bool."""
    cy, cx = _centre(rng, kind)
    r0 = rng.uniform(*radius)
    theta = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    r = np.full_like(theta, r0)
    for k in (2, 3, 5):
        r += r0 * rng.uniform(0.03, 0.18) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    rr, cc = draw.polygon(cy + r * np.sin(theta), cx + r * np.cos(theta), shape=(IMAGE_SIDE, IMAGE_SIDE))
    mask = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=bool)
    mask[rr, cc] = True
    return mask


def _curve(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A quadratic Bézier scratch, about 5 px wide. ``(S, S)`` bool."""
    p0 = np.array(_centre(rng, kind))
    length = rng.uniform(0.25, 0.5) * IMAGE_SIDE
    angle = rng.uniform(0, np.pi)
    p2 = p0 + length * np.array([np.sin(angle), np.cos(angle)])
    p1 = (p0 + p2) / 2 + rng.uniform(-0.2, 0.2, size=2) * length
    t = np.linspace(0, 1, 200)[:, None]
    pts = ((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2).round().astype(int)  # (200, 2) (row, col)
    mask = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=bool)
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:]):
        rr, cc = draw.line(r0, c0, r1, c1)
        keep = (rr >= 0) & (rr < IMAGE_SIDE) & (cc >= 0) & (cc < IMAGE_SIDE)
        mask[rr[keep], cc[keep]] = True
    return ndimage.binary_dilation(mask, iterations=SCRATCH_DILATION)  # cross-shaped: ~5 px wide


# -- defects ---------------------------------------------------------------------------------------------
def _apply(rng: np.random.Generator, img: np.ndarray, name: str, defect: str,
           foreign: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    kind = CLASSES[name][1]
    out = img.copy()
    if defect == "scratch":
        mask = _curve(rng, kind)
        target = 255.0 if rng.random() < 0.5 else 0.0
        out[mask] += rng.uniform(*SCRATCH_STRENGTH) * (target - out[mask])
    elif defect == "stain":
        mask = _blob(rng, kind, STAIN_RADIUS)
        dark = out[mask].mean() > DARK_SURROUNDINGS  # a dark stain on bright ground, a pale one on dark ground
        colour = np.array([70, 45, 25] if dark else [225, 215, 190], np.float32)
        colour = colour if img.shape[2] == 3 else colour[:1]
        out[mask] += rng.uniform(*STAIN_OPACITY) * (colour - out[mask])
    elif defect == "patch":
        mask = _blob(rng, kind, PATCH_RADIUS)
        other = _normal(rng, foreign, FOREIGN_TEXTURE[name]).mean(axis=2)  # (S, S) grey
        z = (other[mask] - other[mask].mean()) / (other[mask].std() + 1e-6)
        # same mean as the surroundings, but the foreign material's structure at a stronger contrast
        out[mask] = out[mask].mean(axis=0) + PATCH_CONTRAST * z[:, None] * out[mask].std(axis=0)
    elif defect == "missing":
        mask = _blob(rng, kind, MISSING_RADIUS)
        blurred = ndimage.gaussian_filter(img, sigma=(6, 6, 0))
        dark = out[mask].mean() > DARK_SURROUNDINGS  # the hole shows darker, or paler on a dark ground
        out[mask] = blurred[mask] * (rng.uniform(*MISSING_DARKEN) if dark else rng.uniform(*MISSING_BRIGHTEN))
    else:
        raise DataError(f"unknown demo defect {defect!r}")
    return out, mask


def _finish(rng: np.random.Generator, img: np.ndarray) -> Image.Image:
    img = np.clip(img + rng.normal(0, NOISE_STD, size=img.shape), 0, 255).round().astype(np.uint8)
    return Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)  # "L" for grayscale classes


def _write_class(out: Path, index: int, name: str, seed: int) -> Counter:
    rng = np.random.default_rng([seed, index])
    source, _, tint, _, defects = CLASSES[name]
    src = _source(source)
    if tint is None and src.ndim == 3:
        src = np.asarray(Image.fromarray(src).convert("L"))
    foreign = _source(FOREIGN_TEXTURE[name]) if name in FOREIGN_TEXTURE else None
    counts: Counter = Counter()
    for split, n in (("train", NUM_TRAIN_GOOD), ("test", NUM_TEST_GOOD)):
        folder = out / name / split / "good"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _finish(rng, _normal(rng, src, name)).save(folder / f"{i:03d}.png", compress_level=PNG_COMPRESSION)
        counts[f"{split}/good"] += n
    for defect in defects:
        folder, gt = out / name / "test" / defect, out / name / "ground_truth" / defect
        folder.mkdir(parents=True, exist_ok=True)
        gt.mkdir(parents=True, exist_ok=True)
        for i in range(NUM_PER_DEFECT):
            img, mask = _apply(rng, _normal(rng, src, name), name, defect, foreign)
            _finish(rng, img).save(folder / f"{i:03d}.png", compress_level=PNG_COMPRESSION)
            Image.fromarray(mask.astype(np.uint8) * 255).save(gt / f"{i:03d}_mask.png", compress_level=PNG_COMPRESSION)
        counts[f"test/{defect}"] += NUM_PER_DEFECT
    return counts


def make_demo_dataset(out_dir: str | Path, seed: int = 0, verbose: bool = True,
                      extra_classes: tuple[str, ...] | list[str] = ()) -> Path:
    """Write the demo dataset (MVTec-AD layout) to ``out_dir``; same seed → byte-identical files.

    Args:
        out_dir: folder to write (created; existing demo files are overwritten).
        seed: random seed of every crop, jitter and defect.
        verbose: print a summary of what was written.
        extra_classes: opt-in classes written after the default five (their images do not change the
            others'): ``"lattice"``, a grid of studs whose defects need global context (``demo_lattice.py``).

    Returns:
        ``out_dir`` as a ``Path``.
    """
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP_FILE).unlink(missing_ok=True)
    unknown = [c for c in extra_classes if c not in EXTRA_CLASSES]
    if unknown:
        raise ValueError(f"unknown extra demo class(es) {unknown}; choose from {list(EXTRA_CLASSES)}")
    summary = {name: _write_class(out, i, name, seed) for i, name in enumerate(CLASSES)}
    for name in extra_classes:
        summary[name] = _write_extra(out, len(CLASSES) + EXTRA_CLASSES.index(name), seed)
    (out / STAMP_FILE).write_text(json.dumps({"version": DEMO_VERSION, "generator": _generator_fingerprint(),
                                              "seed": seed, "side": IMAGE_SIDE, "classes": list(summary)},
                                             indent=1) + "\n")
    if verbose:
        total = sum(sum(c.values()) for c in summary.values())
        print(f"wrote the omniad_lite demo dataset (MVTec-AD layout, seed {seed}) to {out}: {total} images "
              f"of {IMAGE_SIDE}x{IMAGE_SIDE} px in {len(summary)} classes")
        for name, c in summary.items():
            kind = CLASSES[name][1] if name in CLASSES else "layout"
            parts = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
            print(f"  {name:7s} ({kind}): {parts}")
    return out


def _write_extra(out: Path, index: int, seed: int) -> Counter:
    return write_lattice(out, index, seed, side=IMAGE_SIDE, num_train=NUM_TRAIN_GOOD, num_test=NUM_TEST_GOOD,
                         gain=GAIN, gamma=GAMMA, noise=NOISE_STD, compress=PNG_COMPRESSION)


def _generator_fingerprint() -> str:
    """Hash of this generator's source and scikit-image's version: any change regenerates a cached demo."""
    digest = hashlib.sha256(Path(__file__).read_bytes() + skimage.__version__.encode())
    return digest.hexdigest()[:16]


def _is_current(stamp: Path) -> bool:
    try:
        return json.loads(stamp.read_text()).get("generator") == _generator_fingerprint()
    except (OSError, json.JSONDecodeError):
        return False


def demo_root(cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """The demo dataset under ``cache_dir`` (default :func:`default_cache_dir`), generated on first call.

    The folder is reused while its stamp records the current generator (source and scikit-image version);
    otherwise it is written again, so an edited generator never serves stale images.
    """
    base = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    root = base / f"demo_v{DEMO_VERSION}_seed{seed}"
    stamp = root / STAMP_FILE
    remove_stale_temps(base, legacy=True)  # folders of generations that were killed
    if _is_current(stamp):
        return root
    tmp = temp_path(root)
    try:
        make_demo_dataset(tmp, seed=seed, verbose=False)  # its summary would name the temporary folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if _is_current(stamp):  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
        home = str(Path.home())
        shown = "~" + str(root)[len(home):] if str(root).startswith(home + os.sep) else str(root)
        print(f"demo dataset generated ({len(CLASSES)} classes, seed {seed}): {shown}")
    return root
