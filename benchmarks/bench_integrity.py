"""What verifying a cache's content hash costs on MVTec-AD-sized caches.

Writes files of the exact sizes the kit's caches have for MVTec-AD at 256² (random bytes: hashing speed
does not depend on content), then times :func:`omniad_lite.integrity.sha256_file` on each (a fresh memo:
the first open of a process) next to a plain read of the same file, interleaved, best of ``--repeats``:

- image cache, train split: 3,629 images x 256 x 256 x 3 uint8 (``images.u8``);
- image cache, test split: 1,725 images (and 1,258 masks of 256 x 256);
- teacher-feature cache (resnet34, fp16): 3,629 x (64 x 64² + 128 x 32² + 256 x 16²) values.

The files were just written, so they are in the page cache (the usual case: the previous run read them);
from a cold disk both columns are bounded by the disk's read speed, which the first epoch pays anyway.

    python benchmarks/bench_integrity.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from omniad_lite import integrity

MB = 1024 * 1024
MVTEC_TRAIN, MVTEC_TEST, MVTEC_TEST_MASKS = 3629, 1725, 1258
RESNET34_FEATURES = 64 * 64 * 64 + 128 * 32 * 32 + 256 * 16 * 16  # values per image, stride 4/8/16 at 256²


def sizes(side: int) -> dict[str, int]:
    image, mask = side * side * 3, side * side
    return {"image cache, train (images.u8)": MVTEC_TRAIN * image,
            "image cache, test (images.u8 + masks.u8)": MVTEC_TEST * image + MVTEC_TEST_MASKS * mask,
            "teacher cache, resnet34 fp16 (3 scales)": int(MVTEC_TRAIN * RESNET34_FEATURES * 2 * (side / 256) ** 2)}


def write_random(path: Path, nbytes: int, chunk: int = 64 * MB) -> None:
    with open(path, "wb") as f:
        left = nbytes
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def read_all(path: Path, chunk: int = 8 * MB) -> None:
    buf = bytearray(chunk)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dir", default=None, help="where to write the files (default: a temporary folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows = []
        for name, nbytes in sizes(args.size).items():
            path = Path(tmp) / "cache.bin"
            write_random(path, nbytes)
            best_hash = best_read = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                read_all(path)
                best_read = min(best_read, time.perf_counter() - t0)
                integrity.forget(path)
                t0 = time.perf_counter()
                integrity.sha256_file(path)
                best_hash = min(best_hash, time.perf_counter() - t0)
            rows.append({"cache": name, "MB": round(nbytes / MB, 1), "verify_s": round(best_hash, 2),
                         "read_only_s": round(best_read, 2), "verify_MB_per_s": round(nbytes / MB / best_hash)})
            path.unlink()
    for row in rows:
        print(json.dumps(row))
    print(json.dumps({"load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
