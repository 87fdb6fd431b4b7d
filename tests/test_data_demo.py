"""The offline demo dataset: deterministic, MVTec layout, >= 4 classes, >= 3 defect types, exact masks;
demo_root generates once; dataset_from_config uses it when root is None."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import imagenet_preprocess
from PIL import Image

from omniad_lite.config import DataConfig
from omniad_lite.data import Preprocess, dataset_from_config, demo_root, load_samples, make_demo_dataset
from omniad_lite.data.demo import CLASSES, DEMO_VERSION


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("demo_a"), seed=0, verbose=False)


def test_same_seed_byte_identical(demo: Path, tmp_path: Path) -> None:
    again = make_demo_dataset(tmp_path / "b", seed=0, verbose=False)
    a, b = _hashes(demo), _hashes(again)
    assert len(a) > 300 and a == b
    other = _hashes(make_demo_dataset(tmp_path / "c", seed=1, verbose=False))
    assert other.keys() == a.keys() and sum(other[k] != a[k] for k in a) > 0.9 * len(a)


def test_loads_as_mvtec(demo: Path) -> None:
    train = load_samples(demo, "mvtec", "train", validate=True)
    test = load_samples(demo, "mvtec", "test", validate=True)
    classes = sorted({s.cls_name for s in train})
    assert len(classes) >= 4 and classes == sorted(CLASSES)
    defects = {s.defect for s in test if s.label == 1}
    assert len(defects) >= 3
    for cls in classes:
        assert sum(s.cls_name == cls for s in train) >= 30
        assert sum(s.cls_name == cls and s.label == 0 for s in test) >= 5
        assert sum(s.cls_name == cls and s.label == 1 for s in test) >= 10
    modes = {Image.open(s.image_path).mode for s in train}
    assert modes == {"L", "RGB"}  # textures and objects, grayscale and colour


def test_masks_are_nonempty_and_binary(demo: Path) -> None:
    for s in load_samples(demo, "mvtec", "test"):
        if s.label:
            m = np.asarray(Image.open(s.mask_path))
            assert set(np.unique(m)) == {0, 255}
            assert 0.001 < (m > 0).mean() < 0.2  # visible but small


def test_normal_samples_vary(demo: Path) -> None:
    for cls in CLASSES:
        a = np.asarray(Image.open(demo / cls / "train" / "good" / "000.png"), dtype=np.float32)
        b = np.asarray(Image.open(demo / cls / "train" / "good" / "001.png"), dtype=np.float32)
        assert np.abs(a - b).mean() > 5  # different crops/lighting, not copies


def test_demo_root_generates_once(tmp_path: Path) -> None:
    root = demo_root(tmp_path)
    assert root.name == f"demo_v{DEMO_VERSION}_seed0" and (root / "demo.json").is_file()
    stamp = (root / "coins" / "train" / "good" / "000.png").stat().st_mtime_ns
    assert demo_root(tmp_path) == root
    assert (root / "coins" / "train" / "good" / "000.png").stat().st_mtime_ns == stamp  # not rewritten
    cfg = DataConfig(root=None, cache_dir=str(tmp_path), classes=["coins", "grass"])
    train = dataset_from_config(cfg, "train", imagenet_preprocess(32), progress=False)
    assert train.class_names == ["coins", "grass"] and train.cache is not None
    assert train.cache.dir.parent == tmp_path / "images"
    test = dataset_from_config(cfg, "test", Preprocess(32, (0.5,) * 3, (0.5,) * 3), progress=False)
    item = test[len(test) - 1]
    assert item["image"].shape == (3, 32, 32) and float(item["image"].min()) >= -1.0 - 1e-6
    no_cache = dataset_from_config(DataConfig(root=str(root), format="auto", cache_images=False,
                                              cache_dir=str(tmp_path)), "test", imagenet_preprocess(16), progress=False)
    assert no_cache.cache is None and len(no_cache) == len(load_samples(root, "mvtec", "test"))
    with pytest.raises(ValueError, match=r"data.root is None .* data.format='visa'; set data.root"):
        dataset_from_config(DataConfig(root=None, format="visa", cache_dir=str(tmp_path)), "train",
                            imagenet_preprocess(16))


def test_default_cache_dir_env(monkeypatch, tmp_path: Path) -> None:
    from omniad_lite.data import default_cache_dir
    monkeypatch.setenv("OMNIAD_LITE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("OMNIAD_LITE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "omniad_lite"


def test_demo_root_regenerates_a_stale_generator(tmp_path: Path) -> None:
    """A cached demo written by another version of the generator is not served (its stamp differs)."""
    root = demo_root(tmp_path)
    png = root / "coins" / "train" / "good" / "000.png"
    original = png.read_bytes()
    png.write_bytes(b"stale")  # what an older generator left behind
    stamp = json.loads((root / "demo.json").read_text())
    (root / "demo.json").write_text(json.dumps({**stamp, "generator": "an older generator"}))
    assert demo_root(tmp_path) == root
    assert png.read_bytes() == original
    assert json.loads((root / "demo.json").read_text())["generator"] == stamp["generator"]


def _studs(img: np.ndarray) -> int:
    """Dark blobs larger than half a stud: an independent count of the lattice's studs."""
    from scipy import ndimage

    labels, n = ndimage.label(img < 110)
    return int((np.bincount(labels.ravel())[1:] > 100).sum())


def test_lattice_is_opt_in_and_leaves_the_default_classes_unchanged(demo: Path, tmp_path: Path) -> None:
    extra = make_demo_dataset(tmp_path / "x", seed=0, verbose=False, extra_classes=("lattice",))
    base = _hashes(demo)
    both = {k: v for k, v in _hashes(extra).items() if not k.startswith("lattice") and k != "demo.json"}
    assert both == {k: v for k, v in base.items() if k != "demo.json"}  # byte-identical default classes
    assert not (demo / "lattice").exists()
    assert json.loads((extra / "demo.json").read_text())["classes"][-1] == "lattice"
    with pytest.raises(ValueError, match="unknown extra demo class"):
        make_demo_dataset(tmp_path / "y", extra_classes=("lattic",))


def test_lattice_defects_change_the_layout_only(tmp_path: Path) -> None:
    from omniad_lite.data.demo_lattice import NUM_PER_DEFECT, write_lattice

    write_lattice(tmp_path, 5, 0, side=192, num_train=3, num_test=3, gain=(1, 1), gamma=(1, 1), noise=1.5, compress=1)
    root = tmp_path / "lattice"
    for img in sorted((root / "train" / "good").glob("*.png")):
        assert _studs(np.asarray(Image.open(img))) == 16
    expected = {"missing": 15, "extra": 17, "shifted": (15, 16)}  # a shifted stud may touch its neighbour
    for defect, count in expected.items():
        files = sorted((root / "test" / defect).glob("*.png"))
        assert len(files) == NUM_PER_DEFECT
        for f in files:
            n = _studs(np.asarray(Image.open(f)))
            assert n in count if isinstance(count, tuple) else n == count, (f, n)
            mask = np.asarray(Image.open(root / "ground_truth" / defect / f"{f.stem}_mask.png")) > 0
            assert 150 < mask.sum() < 900  # about one or two stud areas (π·9² ≈ 250 px each)
