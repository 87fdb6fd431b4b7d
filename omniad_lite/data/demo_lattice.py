"""An opt-in demo class whose defects need global context: ``lattice``, a regular 4 × 4 grid of studs.

Every normal image shows the same grid (moved as a whole, lit differently) on a plain, finely textured
ground with a wide empty margin, so plain ground and single studs are everywhere normal. The three defects
change the *layout*, not the look of any one part:

``missing``  one stud removed: the hole looks like the empty margin around the grid;
``extra``    one stud added in the middle of a cell between four studs: it looks like every other stud;
``shifted``  one stud moved by 35–50 % of the grid pitch along a row or a column.

A patch matcher that compares small neighbourhoods with the training patches (the kNN baseline) finds a
close normal match for each of these patches; only a model that knows where studs belong can flag them.
Such "logical" anomalies are what MVTec LOCO AD (Bergmann et al., IJCV 2022) collects. The mask of each
defect is exactly the set of pixels the defect changed (rendered with and without it, before noise).

``make_demo_dataset(out, extra_classes=("lattice",))`` adds the class; the default demo has no lattice.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

GRID = 4  # studs per row and per column
PITCH = 34.0  # px between stud centres
RADIUS = (8.5, 9.5)  # px, stud radius (drawn per image)
STUD_JITTER = 0.8  # px, per-stud position noise of a normal layout
OFFSET = 12.0  # px, max shift of the whole grid from the image centre
GROUND = (150.0, 190.0)  # grey level of the ground
STUD = (45.0, 75.0)  # grey level of a stud
GROUND_TEXTURE = 6.0  # std (grey levels) of the ground's fine texture, smoothed at σ = 1.5 px
SHIFT = (0.35, 0.5)  # fraction of the pitch a shifted stud moves
CHANGED = 0.5  # grey levels: a pixel belongs to the mask when the defect changed it by more
DEFECTS = ("missing", "extra", "shifted")
NUM_PER_DEFECT = 10  # twice the other demo classes: image AUROC per defect type in steps of 1 %


def _layout(rng: np.random.Generator, side: int) -> np.ndarray:
    """Stud centres ``(GRID², 2)`` as (row, col) px: the regular grid, moved as a whole, with a little noise."""
    idx = np.arange(GRID) - (GRID - 1) / 2
    rows, cols = np.meshgrid(idx * PITCH, idx * PITCH, indexing="ij")  # (GRID, GRID) each
    centre = side / 2 + rng.uniform(-OFFSET, OFFSET, size=2)
    pts = np.stack([rows.ravel(), cols.ravel()], axis=1) + centre  # (GRID², 2)
    return pts + rng.normal(0, STUD_JITTER / 2, size=pts.shape)


def _render(ground: np.ndarray, studs: np.ndarray, radius: float, level: float) -> np.ndarray:
    """Anti-aliased dark studs with a small highlight on ``ground`` ``(S, S)`` → ``(S, S)`` float."""
    side = ground.shape[0]
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    img = ground.copy()
    for r0, c0 in studs:
        dist = np.hypot(yy - r0, xx - c0)  # (S, S)
        alpha = np.clip(radius + 0.5 - dist, 0, 1)
        img = img * (1 - alpha) + level * alpha
        glint = np.clip(radius / 3 + 0.5 - np.hypot(yy - r0 + radius / 3, xx - c0 + radius / 3), 0, 1)
        img = img + 0.6 * (255.0 - img) * glint * alpha
    return img


def _defect(rng: np.random.Generator, studs: np.ndarray, defect: str) -> np.ndarray:
    """The stud centres of a defective layout."""
    k = int(rng.integers(len(studs)))
    if defect == "missing":
        return np.delete(studs, k, axis=0)
    if defect == "extra":
        i, j = rng.integers(GRID - 1, size=2)  # a cell between four studs
        corner = studs[[i * GRID + j, i * GRID + j + 1, (i + 1) * GRID + j, (i + 1) * GRID + j + 1]]
        return np.vstack([studs, corner.mean(axis=0)])
    if defect == "shifted":
        out = studs.copy()
        axis, sign = int(rng.integers(2)), rng.choice([-1.0, 1.0])
        out[k, axis] += sign * rng.uniform(*SHIFT) * PITCH
        return out
    raise ValueError(f"unknown lattice defect {defect!r}; choose from {DEFECTS}")


def _image(rng: np.random.Generator, side: int, defect: str | None, gain: tuple, gamma: tuple,
           noise: float) -> tuple[np.ndarray, np.ndarray]:
    """One lattice image ``(S, S)`` uint8 and its mask ``(S, S)`` bool (all False for a normal image)."""
    texture = ndimage.gaussian_filter(rng.normal(0, 1, size=(side, side)), 1.5)  # (S, S)
    ground = (rng.uniform(*GROUND) + GROUND_TEXTURE * texture / texture.std()).astype(np.float32)
    studs, radius, level = _layout(rng, side), rng.uniform(*RADIUS), rng.uniform(*STUD)
    clean = _render(ground, studs, radius, level)
    img, mask = clean, np.zeros((side, side), dtype=bool)
    if defect is not None:
        img = _render(ground, _defect(rng, studs, defect), radius, level)
        mask = np.abs(img - clean) > CHANGED
    g, gm = rng.uniform(*gain), rng.uniform(*gamma)
    img = 255.0 * (np.clip(img * g, 0, 255) / 255.0) ** gm
    img = np.clip(img + rng.normal(0, noise, size=img.shape), 0, 255).round().astype(np.uint8)
    return img, mask


def write_lattice(out: Path, index: int, seed: int, *, side: int, num_train: int, num_test: int,
                  gain: tuple, gamma: tuple, noise: float, compress: int) -> Counter:
    """Write the ``lattice`` class (MVTec-AD layout) under ``out/lattice``; draws from ``rng([seed, index])``."""
    rng = np.random.default_rng([seed, index])
    counts: Counter = Counter()
    jobs = [("train", None, num_train), ("test", None, num_test)] + [("test", d, NUM_PER_DEFECT) for d in DEFECTS]
    for split, defect, n in jobs:
        folder = out / "lattice" / split / (defect or "good")
        folder.mkdir(parents=True, exist_ok=True)
        gt = out / "lattice" / "ground_truth" / defect if defect else None
        if gt:
            gt.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, mask = _image(rng, side, defect, gain, gamma, noise)
            Image.fromarray(img).save(folder / f"{i:03d}.png", compress_level=compress)
            if gt:
                Image.fromarray(mask.astype(np.uint8) * 255).save(gt / f"{i:03d}_mask.png", compress_level=compress)
        counts[f"{split}/{defect or 'good'}"] += n
    return counts
