"""One epoch over a dataset read from the uint8 memmap cache vs decoding every PNG/JPG each time.

Two datasets: the demo dataset (192² PNGs) and a synthetic MVTec-like set of full-size photographs
(1024² PNG like MVTec-AD, 1500x1000 JPG like VisA) cut from scikit-image's bundled photos. An epoch is a
DataLoader pass (batch 16, no workers) producing normalised tensors at ``--size``.

    python benchmarks/bench_cache.py --size 256 --images 48 --repeats 3
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata
from torch.utils.data import DataLoader

from omniad_lite.data import AnomalyDataset, Preprocess, load_samples, make_demo_dataset


def IMAGENET(size: int) -> Preprocess:  # noqa: N802  (resnet34's normalisation at ``size``)
    return Preprocess(size, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

SOURCES = ("coffee", "astronaut", "chelsea", "rocket", "brick", "gravel", "grass", "coins")
PNG_SIDE = 1024  # MVTec-AD images are 700²-1024²
JPG_SIZE = (1500, 1000)  # VisA images are about 1.5k x 1k
JPG_QUALITY = 90
BATCH = 16


def write_fullsize(root: Path, n: int, seed: int = 0) -> None:
    """``n`` normal train images in MVTec layout: half 1024² PNG, half 1500x1000 JPG (two classes)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        src = Image.fromarray(getattr(skdata, SOURCES[i % len(SOURCES)])()).convert("RGB")
        w, h = src.size
        side = int(min(w, h) * rng.uniform(0.6, 0.9))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = src.crop((x0, y0, x0 + side, y0 + side))
        if i % 2 == 0:
            out = root / "png_class" / "train" / "good" / f"{i:03d}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            crop.resize((PNG_SIDE, PNG_SIDE), Image.BICUBIC).save(out)
        else:
            out = root / "jpg_class" / "train" / "good" / f"{i:03d}.jpg"
            out.parent.mkdir(parents=True, exist_ok=True)
            crop.resize(JPG_SIZE, Image.BICUBIC).save(out, quality=JPG_QUALITY)


def epoch_seconds(ds: AnomalyDataset, repeats: int) -> float:
    """Best-of-``repeats`` wall time of one DataLoader pass over ``ds``."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for batch in DataLoader(ds, batch_size=BATCH, num_workers=0):
            batch["image"].sum()
        best = min(best, time.perf_counter() - t)
    return best


def bench(name: str, root: Path, size: int, cache_dir: Path, repeats: int, split: str) -> dict:
    samples = load_samples(root, "mvtec", split)
    decode = epoch_seconds(AnomalyDataset(samples, IMAGENET(size)), repeats)
    t = time.perf_counter()
    cached_ds = AnomalyDataset(samples, IMAGENET(size), cache_dir=cache_dir, progress=False)
    build = time.perf_counter() - t
    cached = epoch_seconds(cached_ds, repeats)
    return {"dataset": name, "images": len(samples), "decode_s": decode, "cache_build_s": build,
            "cached_s": cached, "speedup": decode / cached}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="network input side")
    p.add_argument("--images", type=int, default=48, help="number of full-size images to synthesise")
    p.add_argument("--repeats", type=int, default=3, help="epochs timed per variant (best is kept)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo = make_demo_dataset(tmp / "demo", verbose=False)
        write_fullsize(tmp / "full", args.images)
        rows = [bench("demo (192² PNG, test split)", demo, args.size, tmp / "cache", args.repeats, "test"),
                bench("full-size (1024² PNG + 1500x1000 JPG)", tmp / "full", args.size, tmp / "cache",
                      args.repeats, "train")]
    print("| dataset | images | decode epoch (s) | cache build (s, once) | cached epoch (s) | speed-up |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['images']} | {r['decode_s']:.3f} | {r['cache_build_s']:.3f} | "
              f"{r['cached_s']:.3f} | {r['speedup']:.1f}x |")


if __name__ == "__main__":
    main()
