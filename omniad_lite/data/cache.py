"""A uint8 memory-mapped cache of decoded and resized images and masks (the "fast input path").

The first time a list of samples is used at a given size, every image is decoded, converted to RGB,
resized (the paper's preprocessing, :mod:`omniad_lite.data.images`) and written once into ``images.u8``
``(N, S, S, 3)``; the masks of anomalous samples go to ``masks.u8`` ``(M, S, S)``. Later epochs and runs
read these files through ``numpy.memmap`` and open no image file. The cache folder is named after the file
list, the size and the decoding rule (:data:`~omniad_lite.data.images.DECODE_VERSION`: a cache written
under another rule, e.g. before EXIF orientation was applied, is never reused); its ``meta.json`` stores a stamp of every file's mtime and byte size, and a changed stamp
rebuilds the cache in place. The released code decodes every image in every epoch; this is ours.

Reliability: ``meta.json`` (written last, atomically) also records the size and SHA-256 of both files, checked
whenever a cache is opened (once per process per file, :mod:`omniad_lite.integrity`); a damaged or truncated
cache is reported in one line and rebuilt, so garbled bytes never reach training or evaluation. A build
writes temporary files named after its process, allocated in full before the first write (a full disk
raises one line naming the folder and the megabytes needed, instead of SIGBUS), and those of builders that
died are removed.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from ..progress import tqdm

from ..files import ensure_free, remove, remove_stale_temps, reserve, temp_path, write_json
from ..integrity import check_file, file_record
from .images import DECODE_VERSION, load_pair
from .sample import Sample

CACHE_ENV = "OMNIAD_LITE_CACHE"
CACHE_VERSION = 2  # bump when the preprocessing changes, so old caches are rebuilt (2: bilinear masks)
MAX_DECODE_THREADS = 4  # PIL releases the GIL while decoding/resizing
IMAGES, MASKS, META = "images.u8", "masks.u8", "meta.json"
NO_SPACE_HINT = "free space, or point data.cache_dir (or $OMNIAD_LITE_CACHE) at a bigger disk, or set " \
                "data.cache_images=false"


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
        key = _digest({"files": files, "size": self.size, "version": CACHE_VERSION, "decode": DECODE_VERSION})[:20]
        self.dir = Path(cache_dir).expanduser() / "images" / f"{key}_{self.size}px"
        self.mask_index = np.array([-1] * len(samples), dtype=np.int64)
        with_mask = [i for i, s in enumerate(samples) if s.mask_path is not None]
        self.mask_index[with_mask] = np.arange(len(with_mask))
        self._n, self._m = len(samples), len(with_mask)
        self._images: np.memmap | None = None
        self._masks: np.memmap | None = None
        stamp = file_stamp(samples)
        remove_stale_temps(self.dir, legacy=True)
        problem = self._check(stamp)
        self.was_built = problem is not None
        if self.was_built:
            if problem:
                print(f"warning: image cache {self.dir} is damaged ({problem}); rebuilding it", file=sys.stderr)
            self._build(samples, stamp, progress)

    # -- build -----------------------------------------------------------------------------------------
    def _shapes(self) -> dict[str, tuple[int, ...]]:
        s = self.size
        return {IMAGES: (max(self._n, 1), s, s, 3), MASKS: (max(self._m, 1), s, s)}

    def _check(self, stamp: str) -> str | None:
        """``None`` when the cache is usable; ``""`` when it must be (re)built; else what is damaged."""
        try:
            info = json.loads((self.dir / META).read_text())
        except (OSError, ValueError):
            return ""  # never built, or the build was interrupted
        if info.get("stamp") != stamp or info.get("n") != self._n or info.get("m") != self._m \
                or "files" not in info:
            return ""  # the images changed, or written by an earlier version: build again (not damage)
        for name in self._shapes():
            problem = check_file(self.dir / name, info.get("files", {}).get(name))
            if problem:
                return problem
        return None

    def _build(self, samples: list[Sample], stamp: str, progress: bool) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / META).unlink(missing_ok=True)  # invalid until the new data is complete
        shapes = self._shapes()
        ensure_free(self.dir, sum(int(np.prod(v)) for v in shapes.values()), "the image cache", NO_SPACE_HINT)
        tmps = {name: temp_path(self.dir / name) for name in shapes}
        try:
            arrays = {}
            for name, shape in shapes.items():
                arrays[name] = np.memmap(tmps[name], dtype=np.uint8, mode="w+", shape=shape)
                reserve(tmps[name], "the image cache", NO_SPACE_HINT)
            self._fill(samples, arrays[IMAGES], arrays[MASKS], progress)
            for a in arrays.values():
                a.flush()
            del arrays
            records = {name: file_record(tmp) for name, tmp in tmps.items()}
            for name, tmp in tmps.items():
                os.replace(tmp, self.dir / name)
        finally:
            for tmp in tmps.values():
                remove(tmp)
        write_json(self.dir / META, {"stamp": stamp, "n": self._n, "m": self._m, "size": self.size,
                                     "version": CACHE_VERSION, "decode": DECODE_VERSION, "files": records})

    def _fill(self, samples: list[Sample], images: np.memmap, masks: np.memmap, progress: bool) -> None:
        """Decode every sample into ``images`` ``(N, S, S, 3)`` and ``masks`` ``(M, S, S)``."""
        s = self.size

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

    # -- read ------------------------------------------------------------------------------------------
    def _open(self) -> None:
        shapes = self._shapes()
        self._images = np.memmap(self.dir / IMAGES, dtype=np.uint8, mode="r", shape=shapes[IMAGES])
        self._masks = np.memmap(self.dir / MASKS, dtype=np.uint8, mode="r", shape=shapes[MASKS])

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
