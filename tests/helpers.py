"""Builders shared by the tests: tiny datasets in each real layout (docs/data_formats.md) and a tiny config.

Every builder writes real image files (PNG/JPG) and returns the expected counts so the tests compare the
loaders against what was written, not against the loaders themselves.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from omniad_lite.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from omniad_lite.data.preprocess import Preprocess

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # timm IMAGENET_DEFAULT_MEAN
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_preprocess(size: int) -> Preprocess:
    """Input size ``size`` with ImageNet normalisation (resnet34's)."""
    return Preprocess(size, IMAGENET_MEAN, IMAGENET_STD)


def write_image(path: Path, size_wh: tuple[int, int], mode: str = "RGB", seed: int = 0) -> np.ndarray:
    """Write a random image; returns the array written (before any JPEG loss)."""
    rng = np.random.default_rng(seed)
    w, h = size_wh
    channels = {"RGB": 3, "RGBA": 4, "L": None}[mode]
    shape = (h, w) if channels is None else (h, w, channels)
    arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)
    return arr


def write_mask(path: Path, size_wh: tuple[int, int], box: tuple[int, int, int, int], value: int = 255) -> None:
    """Write a mask that is ``value`` inside ``box`` = (x0, y0, x1, y1) and 0 elsewhere."""
    w, h = size_wh
    arr = np.zeros((h, w), dtype=np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


MVTEC_CLASSES = {"bottle": "RGB", "grid": "L", "widget": "RGBA"}  # grid is grayscale as in MVTec-AD
MVTEC_DEFECTS = {"crack": 2, "hole": 1}
MVTEC_TRAIN, MVTEC_TEST_GOOD, MVTEC_SIZE = 3, 2, (48, 48)


def build_mvtec(root: Path) -> dict:
    """MVTec tree: 3 classes (one grayscale, one RGBA), 3 train, 2 test good, 2 defects with masks."""
    seed = 0
    for cls, mode in MVTEC_CLASSES.items():
        for i in range(MVTEC_TRAIN):
            write_image(root / cls / "train" / "good" / f"{i:03d}.png", MVTEC_SIZE, mode, seed := seed + 1)
        for i in range(MVTEC_TEST_GOOD):
            write_image(root / cls / "test" / "good" / f"{i:03d}.png", MVTEC_SIZE, mode, seed := seed + 1)
        for defect, n in MVTEC_DEFECTS.items():
            for i in range(n):
                write_image(root / cls / "test" / defect / f"{i:03d}.png", MVTEC_SIZE, mode, seed := seed + 1)
                write_mask(root / cls / "ground_truth" / defect / f"{i:03d}_mask.png", MVTEC_SIZE, (8, 16, 24, 40))
    n_anom = sum(MVTEC_DEFECTS.values())
    return {"classes": sorted(MVTEC_CLASSES), "train": MVTEC_TRAIN * len(MVTEC_CLASSES),
            "test": (MVTEC_TEST_GOOD + n_anom) * len(MVTEC_CLASSES), "test_anomalous": n_anom * len(MVTEC_CLASSES)}


VISA_CLASSES = ("candle", "pcb1")
VISA_SIZE = (60, 40)  # not square, like VisA's ~1.5k x 1k JPGs


def build_visa(root: Path) -> dict:
    """VisA: split_csv/1cls.csv, JPG images (60x40), PNG masks with values 0/1."""
    rows = []
    seed = 100
    for cls in VISA_CLASSES:
        for i in range(4):
            rel = f"{cls}/Data/Images/Normal/{i:04d}.JPG"
            write_image(root / rel, VISA_SIZE, "RGB", seed := seed + 1)
            rows.append([cls, "train" if i < 3 else "test", "normal", rel, ""])
        for i in range(2):
            rel, mrel = f"{cls}/Data/Images/Anomaly/{i:03d}.JPG", f"{cls}/Data/Masks/Anomaly/{i:03d}.png"
            write_image(root / rel, VISA_SIZE, "RGB", seed := seed + 1)
            write_mask(root / mrel, VISA_SIZE, (10, 5, 30, 25), value=1)  # VisA-style non-255 values
            rows.append([cls, "test", "anomaly", rel, mrel])
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    with (root / "split_csv" / "1cls.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["object", "split", "label", "image", "mask"])
        w.writerows(rows)
    return {"classes": list(VISA_CLASSES), "train": 3 * len(VISA_CLASSES), "test": 3 * len(VISA_CLASSES),
            "test_anomalous": 2 * len(VISA_CLASSES)}


REALIAD_CLASSES = ("audiojack", "usb")
REALIAD_SIZE = (32, 32)


def realiad_sample(cls: str, kind: str, sid: int, view: int, anomaly_class: str, with_mask: bool) -> dict:
    name = f"{cls}_{sid:04d}_{kind}_{anomaly_class}_C{view}_20231021130211"
    folder = f"{kind}/{anomaly_class}/S{sid:04d}"
    return {"category": cls, "anomaly_class": anomaly_class, "image_path": f"{folder}/{name}.jpg",
            "mask_path": f"{folder}/{name}.png" if with_mask else None}


def build_realiad(root: Path) -> dict:
    """Real-IAD: realiad_256/<cls>/..., realiad_jsons/realiad_jsons/<cls>.json; views C1 and C2.

    Per class: train 2 normal sample ids x 2 views; test 1 normal id x 2 views (mask_path null), 1 "AK"
    id x 2 views (with masks) and 1 "QS" id whose mask_path is null (normal by the rule) x 2 views.
    """
    seed = 200
    for cls in REALIAD_CLASSES:
        train, test = [], []
        for sid in (1, 2):
            for view in (1, 2):
                train.append(realiad_sample(cls, "OK", sid, view, "OK", False))
        for view in (1, 2):
            test.append(realiad_sample(cls, "OK", 3, view, "OK", False))
            test.append(realiad_sample(cls, "NG", 4, view, "AK", True))
            test.append(realiad_sample(cls, "NG", 5, view, "QS", False))
        base = root / "realiad_256" / cls
        for rec in train + test:
            write_image(base / rec["image_path"], REALIAD_SIZE, "RGB", seed := seed + 1)
            if rec["mask_path"]:
                write_mask(base / rec["mask_path"], REALIAD_SIZE, (4, 4, 12, 12))
        jdir = root / "realiad_jsons" / "realiad_jsons"
        jdir.mkdir(parents=True, exist_ok=True)
        meta = {"prefix": "", "normal_class": "OK"}
        (jdir / f"{cls}.json").write_text(json.dumps({"meta": meta, "train": train, "test": test}))
    return {"classes": list(REALIAD_CLASSES), "train": 4 * len(REALIAD_CLASSES), "test": 6 * len(REALIAD_CLASSES),
            "test_anomalous": 2 * len(REALIAD_CLASSES)}


def build_meta(root: Path) -> dict:
    """An ADer meta.json (hand written) over a small MVTec-style tree with non-MVTec folder names."""
    seed = 300
    train, test = {}, {}
    for cls in ("tile", "screw"):
        train[cls], test[cls] = [], []
        for i in range(2):
            rel = f"imgs/{cls}/n{i}.png"
            write_image(root / rel, (40, 40), "RGB", seed := seed + 1)
            train[cls].append({"img_path": rel, "mask_path": "", "cls_name": cls, "specie_name": "", "anomaly": 0})
        rel, mrel = f"imgs/{cls}/a0.png", f"gts/{cls}/a0.png"
        write_image(root / rel, (40, 40), "RGB", seed := seed + 1)
        write_mask(root / mrel, (40, 40), (0, 0, 10, 10))
        test[cls].append({"img_path": rel, "mask_path": mrel, "cls_name": cls, "specie_name": "cut", "anomaly": 1})
        test[cls].append({"img_path": f"imgs/{cls}/n0.png", "mask_path": "", "cls_name": cls,
                          "specie_name": "good", "anomaly": 0})
    (root / "meta.json").write_text(json.dumps({"train": train, "test": test}))
    return {"classes": ["screw", "tile"], "train": 4, "test": 4, "test_anomalous": 2}


TINY_SIZE = 64
# lite0 at random init (nothing to load), one Omni-block per stage, 4 learnable tokens, 64² input
TINY_MODEL = dict(encoder="tf_efficientnet_lite0", encoder_weights=None, decoder_depths=(1, 1, 1, 1),
                  num_query_tokens=4, num_kv_tokens=4, image_size=TINY_SIZE)


def make_tiny_mvtec(root: Path, classes=("alpha", "beta"), n_train: int = 8, n_test_good: int = 2,
                    n_defect: int = 2, side: int = 48) -> Path:
    """A tiny MVTec-layout dataset: smooth random textures; defects are bright squares with exact masks."""
    rng = np.random.default_rng(0)
    for ci, cls in enumerate(classes):
        def texture() -> np.ndarray:
            base = rng.normal(128, 20, (side // 4, side // 4, 3))
            img = np.kron(base, np.ones((4, 4, 1))) + rng.normal(0, 4, (side, side, 3)) + 30 * ci
            return np.clip(img, 0, 255).astype(np.uint8)

        for split, n in (("train", n_train), ("test", n_test_good)):
            d = root / cls / split / "good"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(texture()).save(d / f"{i:03d}.png")
        d, g = root / cls / "test" / "spot", root / cls / "ground_truth" / "spot"
        d.mkdir(parents=True)
        g.mkdir(parents=True)
        for i in range(n_defect):
            img, mask = texture(), np.zeros((side, side), np.uint8)
            y, x = rng.integers(8, side - 20, 2)
            img[y:y + 12, x:x + 12] = 250
            mask[y:y + 12, x:x + 12] = 255
            Image.fromarray(img).save(d / f"{i:03d}.png")
            Image.fromarray(mask).save(g / f"{i:03d}_mask.png")
    return root


def tiny_config(root: Path, cache_dir: Path, **train_kw) -> ExperimentConfig:
    """lite0 (random init: nothing to load), one Omni-block per stage, 64² images, batch 4."""
    train = dict(iterations=7, batch_size=4, device="cpu", checkpoint_every=2, log_every=1, seed=3)
    train.update(train_kw)
    return ExperimentConfig(
        name="tiny",
        model=ModelConfig(**TINY_MODEL),
        data=DataConfig(root=str(root), format="mvtec", cache_dir=str(cache_dir)),
        train=TrainConfig(**train))


MVTEC_AD2_CLASSES = {"can": (64, 48), "vial": (40, 56)}  # (width, height): small and not square, like AD 2's photos
MVTEC_AD2_COUNTS = {"train": 8, "validation": 3, "test_public_good": 2, "test_public_bad": 2, "test_private": 3,
                    "test_private_mixed": 2}


def build_mvtec_ad2(root: Path) -> dict:
    """An MVTec AD 2 tree with every split (docs/data_formats.md): smooth textures, defects are bright squares
    with exact masks in ``test_public/ground_truth/bad/<stem>_mask.png``; one private image of each class is
    twice as large, so "its original size" differs between images. Returns the counts written."""
    rng = np.random.default_rng(7)

    def texture(w: int, h: int, shift: int) -> np.ndarray:
        base = rng.normal(128, 20, (h // 4, w // 4, 3))
        img = np.kron(base, np.ones((4, 4, 1))) + rng.normal(0, 4, (h, w, 3)) + shift
        return np.clip(img, 0, 255).astype(np.uint8)

    def save(img: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)

    c = MVTEC_AD2_COUNTS
    for k, (cls, (w, h)) in enumerate(MVTEC_AD2_CLASSES.items()):
        d = root / cls
        for split, n in (("train", c["train"]), ("validation", c["validation"]),
                         ("test_public", c["test_public_good"])):
            for i in range(n):
                save(texture(w, h, 30 * k), d / split / "good" / f"{i:03d}_regular.png")
        for i in range(c["test_public_bad"]):
            img, mask = texture(w, h, 30 * k), np.zeros((h, w), np.uint8)
            y, x = rng.integers(4, h - 16), rng.integers(4, w - 16)
            img[y:y + 12, x:x + 12] = 250
            mask[y:y + 12, x:x + 12] = 255
            save(img, d / "test_public" / "bad" / f"{i:03d}_regular.png")
            save(mask, d / "test_public" / "ground_truth" / "bad" / f"{i:03d}_regular_mask.png")
        for split, suffix in (("test_private", "regular"), ("test_private_mixed", "mixed")):
            for i in range(c[split]):
                scale = 2 if i == 0 else 1
                save(texture(w * scale, h * scale, 30 * k), d / split / f"{i:03d}_{suffix}.png")
    return {"classes": sorted(MVTEC_AD2_CLASSES), **c}
