"""Every bad input gives one clear error naming the file or value and the fix."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import build_meta, build_mvtec, build_realiad, build_visa, imagenet_preprocess, write_mask

from omniad_lite.data import AnomalyDataset, load_samples


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist.*download"):
        load_samples(tmp_path / "nope", "mvtec", "train")


def test_root_in_another_format(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    with pytest.raises(ValueError, match=r"not a 'visa' root: expected .*split_csv/1cls.csv.*format='mvtec'"):
        load_samples(tmp_path, "visa", "train")
    with pytest.raises(ValueError, match=r"not a 'realiad' root: expected .*realiad_jsons"):
        load_samples(tmp_path, "realiad", "train")


def test_auto_says_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "random_folder").mkdir()
    with pytest.raises(ValueError, match=r"looked for split_csv/1cls.csv.*realiad_jsons.*train/good.*meta.json"):
        load_samples(tmp_path, "auto", "train")


def test_unknown_format_option_split(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    with pytest.raises(ValueError, match="unknown dataset format 'mvtech'"):
        load_samples(tmp_path, "mvtech", "train")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['views'\] for format 'mvtec'"):
        load_samples(tmp_path, "mvtec", "train", views=[1])
    with pytest.raises(ValueError, match="split='val'"):
        load_samples(tmp_path, "mvtec", "val")


def test_unknown_class_lists_valid_ones(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    with pytest.raises(ValueError, match=r"unknown class\(es\) \['bottel'\].*valid classes: bottle, grid, widget"):
        load_samples(tmp_path, "mvtec", "test", ["bottel"])


def test_anomalous_image_without_mask(tmp_path: Path) -> None:
    build_mvtec(tmp_path / "mvtec")
    (tmp_path / "mvtec" / "grid" / "ground_truth" / "hole" / "000_mask.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"grid/test/hole/000.png has no mask: expected .*000_mask.png"):
        load_samples(tmp_path / "mvtec", "mvtec", "test")
    root = tmp_path / "visa"
    build_visa(root)
    csv = root / "split_csv" / "1cls.csv"
    csv.write_text(csv.read_text().replace(",candle/Data/Masks/Anomaly/000.png", ","))
    with pytest.raises(ValueError, match=r"Anomaly/000.JPG \(line \d+ of .*1cls.csv\) has no mask"):
        load_samples(root, "visa", "test")
    root = tmp_path / "meta"
    build_meta(root)
    meta = json.loads((root / "meta.json").read_text())
    meta["test"]["tile"][0]["mask_path"] = ""
    (root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"tile/a0.png .*has no mask_path"):
        load_samples(root, "meta", "test")


def test_mask_size_mismatch(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    write_mask(tmp_path / "bottle" / "ground_truth" / "crack" / "001_mask.png", (40, 48), (0, 0, 4, 4))
    with pytest.raises(ValueError, match=r"mask .*crack/001_mask.png is 40x48 but its image .*crack/001.png is 48x48"):
        load_samples(tmp_path, "mvtec", "test", validate=True)
    samples = load_samples(tmp_path, "mvtec", "test", ["bottle"])  # cheap path: caught when decoding
    ds = AnomalyDataset(samples, imagenet_preprocess(16))
    bad = next(i for i, s in enumerate(samples) if s.image_path.endswith("crack/001.png"))
    with pytest.raises(ValueError, match="001_mask.png is 40x48"):
        ds[bad]
    with pytest.raises(ValueError, match="001_mask.png is 40x48"):
        AnomalyDataset(samples, imagenet_preprocess(16), cache_dir=tmp_path / "cache", progress=False)


def test_truncated_and_unreadable_images(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    img = tmp_path / "bottle" / "train" / "good" / "001.png"
    img.write_bytes(img.read_bytes()[:200])  # truncated: header fine, pixel data cut
    samples = load_samples(tmp_path, "mvtec", "train", ["bottle"])
    ds = AnomalyDataset(samples, imagenet_preprocess(16))
    with pytest.raises(RuntimeError, match=r"cannot decode image .*good/001.png .*truncated or corrupt"):
        ds[1]
    (tmp_path / "bottle" / "train" / "good" / "002.png").write_bytes(b"not a png at all")
    with pytest.raises(RuntimeError, match=r"cannot read image .*good/002.png .*not an image"):
        load_samples(tmp_path, "mvtec", "train", ["bottle"], validate=True)


def test_class_without_training_images(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    shutil.rmtree(tmp_path / "widget" / "train")
    with pytest.raises(ValueError, match=r"\['widget'\] have no train images.*classes=\["):
        load_samples(tmp_path, "mvtec", "train")
    assert len(load_samples(tmp_path, "mvtec", "train", ["bottle", "grid"])) == 6


def test_realiad_json_missing_keys(tmp_path: Path) -> None:
    build_realiad(tmp_path)
    path = tmp_path / "realiad_jsons" / "realiad_jsons" / "usb.json"
    data = json.loads(path.read_text())
    del data["train"][1]["mask_path"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"usb.json: train sample #1 lacks key\(s\) \['mask_path'\]"):
        load_samples(tmp_path, "realiad", "train")


def test_realiad_bad_options(tmp_path: Path) -> None:
    build_realiad(tmp_path)
    expected = r"realiad_512 does not exist; pass resolution= one of \['realiad_256'\]"
    with pytest.raises(FileNotFoundError, match=expected):
        load_samples(tmp_path, "realiad", "train", resolution="realiad_512")
    with pytest.raises(ValueError, match=r"views=\[6\]"):
        load_samples(tmp_path, "realiad", "train", views=[6])


def test_listed_image_missing(tmp_path: Path) -> None:
    build_visa(tmp_path)
    (tmp_path / "pcb1" / "Data" / "Images" / "Normal" / "0000.JPG").unlink()
    with pytest.raises(FileNotFoundError, match=r"line \d+ of .*1cls.csv: .*0000.JPG does not exist"):
        load_samples(tmp_path, "visa", "train")
