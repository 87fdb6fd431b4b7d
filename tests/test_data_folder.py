"""The ``folder`` format (your own images, masks optional), ``masks="optional"`` and the held-out split.

Every dataset here is written by the test, so counts, labels and masks are compared with what was written.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import build_meta, build_mvtec, build_visa, imagenet_preprocess, write_image, write_mask
from PIL import Image

from omniad_lite.config import DataConfig
from omniad_lite.data import AnomalyDataset, detect_format, load_samples
from omniad_lite.data.factory import samples_from_config
from omniad_lite.data.formats.folder import MIN_NORMAL_IMAGES
from omniad_lite.data.holdout import MIN_HELDOUT, split_heldout
from omniad_lite.errors import DataWarning


def write_16bit(path: Path, size_wh=(30, 20)) -> None:
    arr = (np.arange(size_wh[0] * size_wh[1]).reshape(size_wh[1], size_wh[0]) * 50).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)  # mode I;16


def build_flat(root: Path, n_good: int = 12, with_bad: bool = True) -> Path:
    """good/ of mixed sizes and modes (RGB, L, RGBA, 16-bit), bad/ with one mask and a defect subfolder."""
    modes = ["RGB", "L", "RGBA"]
    for i in range(n_good):
        if i == n_good - 1:
            write_16bit(root / "good" / f"g{i:02d}.png")
        else:
            write_image(root / "good" / f"g{i:02d}.png", (40 + 8 * (i % 2), 32), modes[i % 3], seed=i)
    if with_bad:
        write_image(root / "bad" / "b0.png", (40, 32), seed=100)
        write_mask(root / "masks" / "b0.png", (40, 32), (5, 5, 15, 15))
        write_image(root / "bad" / "b1.jpg", (48, 32), seed=101)  # no mask
        write_image(root / "bad" / "scratch" / "s0.png", (40, 32), seed=102)  # defect subfolder, no mask
    return root


def build_tree(root: Path, classes=("nut", "washer"), n_train: int = MIN_NORMAL_IMAGES) -> Path:
    """<class>/train/good + test/good + test/dent, no masks at all."""
    seed = 0
    for cls in classes:
        for i in range(n_train):
            write_image(root / cls / "train" / "good" / f"{i:03d}.png", (36, 36), seed=(seed := seed + 1))
        write_image(root / cls / "test" / "good" / "000.png", (36, 36), seed=(seed := seed + 1))
        for i in range(2):
            write_image(root / cls / "test" / "dent" / f"{i:03d}.png", (36, 36), seed=(seed := seed + 1))
    return root


def test_flat_layout_splits_labels_masks(tmp_path):
    root = build_flat(tmp_path / "widgets")
    assert detect_format(root) == "folder"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # Python's own rule: a note once per text and place
        train = load_samples(root, "auto", "train")
        test = load_samples(root, "auto", "test")
        assert {s.cls_name for s in train + test} == {"widgets"}  # the root folder names the class
        n_test_good = round(0.2 * 12)
        assert len(train) == 12 - n_test_good and all(s.label == 0 for s in train)
        good_test = [s for s in test if s.label == 0]
        assert len(good_test) == n_test_good
        assert not {s.image_path for s in train} & {s.image_path for s in good_test}
        bad = {Path(s.image_path).name: s for s in test if s.label == 1}
        assert set(bad) == {"b0.png", "b1.jpg", "s0.png"}
        assert bad["b0.png"].mask_path == str(root / "masks" / "b0.png") and bad["b1.jpg"].mask_path is None
        assert bad["s0.png"].defect == "scratch" and bad["b0.png"].defect == "bad"
        assert load_samples(root, "folder", "train") == train  # deterministic
        other = load_samples(root, "folder", "train", split_seed=1, test_fraction=0.5)
    assert len(other) == 6
    sizes = [w for w in seen if "different sizes" in str(w.message)]
    assert len(sizes) == 1 and sizes[0].category is DataWarning  # stated once, not per call


def test_flat_good_only_and_required_masks(tmp_path):
    root = build_flat(tmp_path / "only_good", with_bad=False)
    assert all(s.label == 0 for s in load_samples(root, "folder", "test"))
    root = build_flat(tmp_path / "flat")
    with pytest.raises(FileNotFoundError, match=r"bad/b1.jpg has no mask: expected .*masks/b1.png"):
        load_samples(root, "folder", "test", masks="required")


def test_tree_without_masks(tmp_path):
    root = build_tree(tmp_path / "tree")
    assert detect_format(root) == "mvtec"  # a benchmark-style tree is read as MVTec (masks required) ...
    with pytest.raises(FileNotFoundError, match=r"has no mask.*masks='optional', or format='folder'"):
        load_samples(root, "auto", "test")
    for fmt, options in (("folder", {}), ("mvtec", {"masks": "optional"})):  # ... unless asked otherwise
        test = load_samples(root, fmt, "test", **options)
        assert len(test) == 6 and sum(s.label for s in test) == 4
        assert all(s.mask_path is None for s in test)
    assert len(load_samples(root, "folder", "train", ["washer"])) == MIN_NORMAL_IMAGES


def test_mvtec_still_detected_and_benchmarks_fail_loudly(tmp_path):
    build_mvtec(tmp_path / "mvtec")
    assert detect_format(tmp_path / "mvtec") == "mvtec"
    lost = tmp_path / "mvtec" / "grid" / "ground_truth" / "hole" / "000_mask.png"
    lost.unlink()
    with pytest.raises(FileNotFoundError, match="000.png has no mask"):
        load_samples(tmp_path / "mvtec", "mvtec", "test")
    samples = load_samples(tmp_path / "mvtec", "mvtec", "test", masks="optional")
    assert [s.mask_path for s in samples if s.image_path.endswith("grid/test/hole/000.png")] == [None]
    with pytest.raises(ValueError, match="masks='sometimes' must be one of"):
        load_samples(tmp_path / "mvtec", "mvtec", "test", masks="sometimes")
    build_visa(tmp_path / "visa")
    csv = tmp_path / "visa" / "split_csv" / "1cls.csv"
    csv.write_text(csv.read_text().replace(",candle/Data/Masks/Anomaly/000.png", ","))
    with pytest.raises(ValueError, match="has no mask"):
        load_samples(tmp_path / "visa", "visa", "test")
    assert sum(s.mask_path is None and s.label == 1
               for s in load_samples(tmp_path / "visa", "visa", "test", masks="optional")) == 1
    build_meta(tmp_path / "meta")
    meta = tmp_path / "meta" / "meta.json"
    meta.write_text(meta.read_text().replace('"gts/tile/a0.png"', '""'))
    assert sum(s.mask_path is None and s.label == 1
               for s in load_samples(tmp_path / "meta", "meta", "test", masks="optional")) == 1


def test_any_mode_and_size_decodes_and_masks_are_marked(tmp_path):
    root = build_flat(tmp_path / "modes")
    samples = load_samples(root, "folder", "train") + load_samples(root, "folder", "test")
    for cache in (None, tmp_path / "cache"):
        ds = AnomalyDataset(samples, imagenet_preprocess(24), cache_dir=cache, progress=False)
        items = [ds[i] for i in range(len(ds))]
        assert all(it["image"].shape == (3, 24, 24) and np.isfinite(it["image"].numpy()).all() for it in items)
        valid = {Path(it["path"]).name: it["mask_valid"] for it in items}
        assert valid["b0.png"] and not valid["b1.jpg"] and not valid["s0.png"]
        assert all(valid[Path(s.image_path).name] for s in samples if s.label == 0)
        b0 = next(it for it in items if it["path"].endswith("b0.png"))
        assert b0["mask"].sum() > 0


# -- bad input: one line naming the path and the fix ---------------------------------------------------------
def test_folder_without_images(tmp_path):
    (tmp_path / "empty" / "good").mkdir(parents=True)
    (tmp_path / "empty" / "good" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"no images in .*empty/good: put the normal \(defect-free\) images there"):
        load_samples(tmp_path / "empty", "auto", "train")


def test_too_few_normal_images(tmp_path):
    root = build_flat(tmp_path / "few", n_good=MIN_NORMAL_IMAGES - 1)
    with pytest.raises(ValueError, match=rf"'few' has {MIN_NORMAL_IMAGES - 1} normal image\(s\) in .*few/good; "
                                         rf"at least {MIN_NORMAL_IMAGES} are needed.*add normal images"):
        load_samples(root, "folder", "train")


def test_class_without_good(tmp_path):
    root = build_tree(tmp_path / "tree")
    shutil.rmtree(root / "washer" / "train" / "good")
    (root / "washer" / "train" / "ok").mkdir()
    with pytest.raises(ValueError, match=r"class 'washer' has no train/good/ folder \(.*washer/train/good\): put"):
        load_samples(root, "folder", "train")


@pytest.mark.parametrize("content, reason", [(b"", "empty file, 0 bytes"),
                                             (b"not a png at all", "not a readable image")])
def test_unreadable_files_are_named(tmp_path, content, reason):
    root = build_flat(tmp_path / "bad_files")
    (root / "good" / "broken.png").write_bytes(content)
    with pytest.raises(ValueError, match=rf"1 unreadable image file\(s\) under .*: .*good/broken.png \({reason}\); "
                                         r"delete or replace them"):
        load_samples(root, "folder", "train", test_fraction=0.0)
    assert (root / "good" / "broken.png").read_bytes() == content  # nothing deleted or moved


def test_non_image_files_are_skipped_with_one_note(tmp_path):
    root = build_flat(tmp_path / "extra")
    (root / "good" / "labels.csv").write_text("a,b\n")
    (root / "good" / ".DS_Store").write_bytes(b"\0")
    with pytest.warns(DataWarning, match=r"skipped 1 non-image file\(s\)") as seen:
        assert len(load_samples(root, "folder", "train", test_fraction=0.0)) == 12
    err = " ".join(str(w.message) for w in seen if "skipped" in str(w.message))
    assert "labels.csv" in err and "DS_Store" not in err


def test_mask_of_another_size(tmp_path):
    root = build_flat(tmp_path / "masks")
    write_mask(root / "masks" / "b0.png", (20, 20), (1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"mask .*masks/b0.png is 20x20 but its image .*bad/b0.png is 40x32; "
                                         r"a mask must have its image's size"):
        load_samples(root, "folder", "test")


def test_unexpected_folder_in_flat_layout(tmp_path):
    root = build_flat(tmp_path / "odd")
    write_image(root / "defects" / "x.png", (40, 32))
    with pytest.raises(ValueError, match=r"unexpected 'defects' in the flat image folder .*odd: normal images go in "
                                         r"good/, anomalous ones in bad/"):
        load_samples(root, "folder", "train")


# -- the held-out split -----------------------------------------------------------------------------------
def test_split_heldout_per_class_seeded_and_disjoint(tmp_path):
    root = build_tree(tmp_path / "tree", n_train=20)
    samples = load_samples(root, "folder", "train")
    kept, held = split_heldout(samples, 0.25, seed=0)
    assert sorted(s.cls_name for s in held) == ["nut"] * 5 + ["washer"] * 5
    assert sorted(kept + held, key=lambda s: s.image_path) == samples
    assert split_heldout(samples, 0.25, seed=0)[1] == held
    assert split_heldout(samples, 0.25, seed=1)[1] != held
    assert len(split_heldout(samples, 0.01, seed=0)[1]) == 2 * MIN_HELDOUT  # at least two per class
    assert split_heldout(samples, 0.0, seed=0) == (samples, [])
    with pytest.raises(ValueError, match="class 'nut' has 2 normal training image.*data.val_fraction=0"):
        split_heldout(samples[:2], 0.1, seed=0)


def test_config_splits_divide_the_train_split(tmp_path):
    root = build_tree(tmp_path / "tree", n_train=20)
    cfg = DataConfig(root=str(root), format="folder", val_fraction=0.2, val_seed=3)
    train, val = samples_from_config(cfg, "train"), samples_from_config(cfg, "val")
    assert len(val) == 8 and len(train) == 32
    assert sorted(train + val, key=lambda s: s.image_path) == load_samples(root, "folder", "train")
    assert len(samples_from_config(cfg, "test")) == 6
    with pytest.raises(ValueError, match=r"val_fraction=1.5 must be in \[0, 1\)"):
        DataConfig(val_fraction=1.5)
