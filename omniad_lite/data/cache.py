"""A uint8 memory-mapped cache of decoded and resized images and masks (the "fast input path").

The first time a list of samples is used at a given size, every image is decoded, converted to RGB,
resized (the paper's preprocessing, :mod:`omniad_lite.data.images`) and written once into ``images.u8``
``(N, S, S, 3)``; the masks of anomalous samples go to ``masks.u8`` ``(M, S, S)``. Later epochs and runs
read these files through ``numpy.memmap`` and open no image file. The cache folder is named after the file
list and the size; its ``meta.json`` stores a stamp of every file's mtime and byte size, and a changed stamp
rebuilds the cache in place. The released code decodes every image in every epoch; this is ours.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from ..progress import tqdm

from .images import load_pair
from .sample import Sample

CACHE_ENV = "OMNIAD_LITE_CACHE"
CACHE_VERSION = 1  # bump when the preprocessing changes, so old caches are rebuilt
MAX_DECODE_THREADS = 4  # PIL releases the GIL while decoding/resizing


def default_cache_dir() -> Path:
    """``$OMNIAD_LITE_CACHE`` if set, else ``~/.cache/omniad_lite``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "omniad_lite"


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def file_stamp(samples: list[Sample]) -> str:
    """Hash of every image's and mask's mtime (ns) and size in bytes: changes when any file changes."""
    stats = []
    for s in samples:
        for p in (s.image_path, s.mask_path):
            if p is not None:
                st = os.stat(p)
                stats.append((st.st_mtime_ns, st.st_size))
    return _digest(stats)


class ImageCache:
    """Decoded, resized images and masks of ``samples`` in two uint8 memmaps under ``cache_dir``.

    Args:
        samples: the samples, in dataset order.
        size: side S of the stored square images.
        cache_dir: root folder of all caches; this one lives in ``cache_dir/images/<key>``.
        progress: show a progress bar while building.
    """

    def __init__(self, samples: list[Sample], size: int, cache_dir: str | Path, progress: bool = True):
        self.size = int(size)
        files = [(s.image_path, s.mask_path) for s in samples]
        key = _digest({"files": files, "size": self.size, "version": CACHE_VERSION})[:20]
        self.dir = Path(cache_dir).expanduser() / "images" / f"{key}_{self.size}px"
        self.mask_index = np.array([-1] * len(samples), dtype=np.int64)
        with_mask = [i for i, s in enumerate(samples) if s.mask_path is not None]
        self.mask_index[with_mask] = np.arange(len(with_mask))
        self._n, self._m = len(samples), len(with_mask)
        self._images: np.memmap | None = None
        self._masks: np.memmap | None = None
        stamp = file_stamp(samples)
        self.was_built = not self._valid(stamp)
        if self.was_built:
            self._build(samples, stamp, progress)

    # -- build -----------------------------------------------------------------------------------------
    def _valid(self, stamp: str) -> bool:
        meta = self.dir / "meta.json"
        if not meta.is_file():
            return False
        try:
            info = json.loads(meta.read_text())
        except json.JSONDecodeError:
            return False
        return info.get("stamp") == stamp and info.get("n") == self._n and info.get("m") == self._m

    def _build(self, samples: list[Sample], stamp: str, progress: bool) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "meta.json").unlink(missing_ok=True)  # invalid until the new data is complete
        s, tag = self.size, f".tmp{os.getpid()}"
        img_tmp, mask_tmp = self.dir / f"images.u8{tag}", self.dir / f"masks.u8{tag}"
        images = np.memmap(img_tmp, dtype=np.uint8, mode="w+", shape=(max(self._n, 1), s, s, 3))
        masks = np.memmap(mask_tmp, dtype=np.uint8, mode="w+", shape=(max(self._m, 1), s, s))

        def work(i: int) -> None:
            image, mask = load_pair(samples[i].image_path, samples[i].mask_path, s)
            images[i] = image  # (S, S, 3)
            if self.mask_index[i] >= 0:
                masks[self.mask_index[i]] = mask  # (S, S)

        threads = max(1, min(MAX_DECODE_THREADS, os.cpu_count() or 1))
        with ThreadPoolExecutor(threads) as pool:
            for _ in tqdm(pool.map(work, range(self._n)), total=self._n, disable=not progress,
                          desc=f"caching {self._n} images at {s}px"):
                pass
        images.flush()
        masks.flush()
        del images, masks
        os.replace(img_tmp, self.dir / "images.u8")
        os.replace(mask_tmp, self.dir / "masks.u8")
        (self.dir / "meta.json").write_text(json.dumps({"stamp": stamp, "n": self._n, "m": self._m,
                                                         "size": s, "version": CACHE_VERSION}))

    # -- read ------------------------------------------------------------------------------------------
    def _open(self) -> None:
        s = self.size
        self._images = np.memmap(self.dir / "images.u8", dtype=np.uint8, mode="r", shape=(max(self._n, 1), s, s, 3))
        self._masks = np.memmap(self.dir / "masks.u8", dtype=np.uint8, mode="r", shape=(max(self._m, 1), s, s))

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``(S, S, 3)`` and binary mask ``(S, S)`` of sample ``i`` (uint8 copies)."""
        if self._images is None:
            self._open()
        image = np.array(self._images[i])  # (S, S, 3)
        j = self.mask_index[i]
        mask = np.array(self._masks[j]) if j >= 0 else np.zeros((self.size, self.size), np.uint8)  # (S, S)
        return image, mask

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = state["_masks"] = None  # each DataLoader worker maps the files itself
        return state
