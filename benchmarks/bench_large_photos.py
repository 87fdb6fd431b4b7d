"""Images per second and peak memory of reading a folder of 12 MP camera JPEGs, full vs reduced-size decoding.

The folder is generated: scikit-image's bundled photos upscaled to 4000x3000 (12 MP, a phone camera's size)
with fine noise and a texture so the JPEGs are as large as real ones (quality 92), half of them stored sideways
with EXIF orientation 6 as phones store portraits. Each mode reads every image with
:func:`omniad_lite.data.images.load_image` at ``--size`` (what the image cache does per image) in its own fresh
Python process, one thread; memory is the peak of the process's anonymous resident memory (Linux ``RssAnon``,
sampled every millisecond) minus its value before the first image: what decoding one photo at a time takes.

    python benchmarks/bench_large_photos.py --images 12 --size 256 --repeats 2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

SOURCES = ("astronaut", "coffee", "chelsea", "rocket")
PHOTO_WH = (4000, 3000)  # 12 MP
JPEG_QUALITY = 92
NOISE_STD = 5.0
MODES = {"full": False, "reduced": True}  # load_image(..., reduced=...)


SAMPLE_S = 0.001


def _status_mib(field: str) -> float:
    """A memory field of this process's ``/proc/self/status`` (e.g. ``RssAnon``), in MiB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024  # kB -> MiB


class AnonPeak:
    """Peak anonymous resident memory (``RssAnon``: the heap, not shared libraries the kernel may evict) while
    the ``with`` block runs, sampled every :data:`SAMPLE_S` seconds by a thread, minus its value at the start."""

    def __enter__(self):
        self.start = self.peak = _status_mib("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.peak = max(self.peak, _status_mib("RssAnon"))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_mib("RssAnon"))

    @property
    def mib(self) -> float:
        return self.peak - self.start


def write_photos(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` 12 MP JPEGs under ``folder``; every second one stored sideways with EXIF orientation 6."""
    from skimage import data as skdata

    from omniad_lite.data.images import EXIF_ORIENTATION

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = Image.fromarray(getattr(skdata, SOURCES[i % len(SOURCES)])()).convert("RGB")
        big = np.asarray(src.resize(PHOTO_WH, Image.BICUBIC), dtype=np.float32)  # (3000, 4000, 3)
        texture = np.sin(np.arange(PHOTO_WH[0]) * rng.uniform(0.2, 0.6))[None, :, None] * 4  # fine stripes
        photo = np.clip(big + texture + rng.normal(0, NOISE_STD, big.shape), 0, 255).astype(np.uint8)
        exif = Image.Exif()
        if i % 2:
            photo = np.ascontiguousarray(np.rot90(photo, 1))  # stored sideways ...
            exif[EXIF_ORIENTATION] = 6  # ... and tagged to be shown upright
        Image.fromarray(photo).save(folder / f"{i:03d}.jpg", quality=JPEG_QUALITY, exif=exif)


def worker(folder: Path, size: int, reduced: bool, repeats: int) -> dict:
    """Read every photo ``repeats`` times; the best pass gives images/s (run in a fresh process)."""
    from omniad_lite.data.images import load_image

    files = sorted(folder.glob("*.jpg"))
    times = []
    with AnonPeak() as memory:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for f in files:
                load_image(f, size, reduced=reduced)
            times.append(time.perf_counter() - t0)
    return {"images": len(files), "images_per_s": len(files) / min(times), "peak_mib": memory.mib}


def run_mode(folder: Path, size: int, mode: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(folder), "--size", str(size), "--mode", mode,
           "--repeats", str(repeats)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--size", type=int, default=256, help="network input side S")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--folder", help="reuse/write the photos here (default: a temporary folder)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=sorted(MODES), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker), args.size, MODES[args.mode], args.repeats)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp) / "photos"
        if len(list(folder.glob("*.jpg"))) != args.images:
            write_photos(folder, args.images)
        mb = sum(f.stat().st_size for f in folder.glob("*.jpg")) / 2**20
        rows = {mode: run_mode(folder, args.size, mode, args.repeats) for mode in MODES}
    print(f"{args.images} JPEGs {PHOTO_WH[0]}x{PHOTO_WH[1]} ({mb:.0f} MiB), read to {args.size}x{args.size}, one "
          f"thread, best of {args.repeats}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| decoding | images/s | peak memory above start (MiB) |")
    print("|---|---|---|")
    for mode, r in rows.items():
        print(f"| {mode} | {r['images_per_s']:.2f} | {r['peak_mib']:.0f} |")
    print(f"speed-up {rows['reduced']['images_per_s'] / rows['full']['images_per_s']:.1f}x")


if __name__ == "__main__":
    main()
