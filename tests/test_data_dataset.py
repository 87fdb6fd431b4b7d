"""AnomalyDataset: tensor shapes and values, RGB conversion, binary masks, non-square inputs, the cache."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import IMAGENET_MEAN, IMAGENET_STD, build_mvtec, build_visa, imagenet_preprocess, write_mask
from PIL import Image

from omniad_lite.data import AnomalyDataset, Preprocess, load_samples

S = 24


def _constant_image(path: Path, value: tuple, mode: str, size_wh=(50, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size_wh, value).save(path)


def test_item_contract(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    ds = AnomalyDataset(load_samples(tmp_path, "mvtec", "test"), imagenet_preprocess(S))
    assert ds.class_names == ["bottle", "grid", "widget"] and len(ds) == 15
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, S, S) and item["image"].dtype == torch.float32
        assert item["mask"].shape == (1, S, S) and item["mask"].dtype == torch.float32
        assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        assert item["label"] == ds.samples[i].label and item["path"] == ds.samples[i].image_path
        assert (item["mask"].sum() > 0) == (item["label"] == 1)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, S, S) and batch["label"].shape == (4,)


@pytest.mark.parametrize("mode,value,rgb", [("RGB", (10, 128, 250), (10, 128, 250)),
                                            ("L", 77, (77, 77, 77)),
                                            ("RGBA", (200, 100, 50, 0), (200, 100, 50))])
def test_normalisation_and_rgb_conversion(tmp_path: Path, mode: str, value, rgb) -> None:
    _constant_image(tmp_path / "c" / "train" / "good" / "000.png", value, mode)
    ds = AnomalyDataset(load_samples(tmp_path, "mvtec", "train"), Preprocess(S, (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)))
    expected = [(v / 255 - m) / sd for v, m, sd in zip(rgb, (0.5, 0.4, 0.3), (0.2, 0.25, 0.5))]
    image = ds[0]["image"]
    for c in range(3):
        torch.testing.assert_close(image[c], torch.full((S, S), expected[c]), atol=1e-6, rtol=0)


def test_default_normalisation_is_imagenet(tmp_path: Path) -> None:
    _constant_image(tmp_path / "c" / "train" / "good" / "000.png", (0, 0, 0), "RGB")
    image = AnomalyDataset(load_samples(tmp_path, "mvtec", "train"), imagenet_preprocess(8))[0]["image"]
    torch.testing.assert_close(image[:, 0, 0], -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD))


def test_non_square_visa_jpg_and_binary_mask(tmp_path: Path) -> None:
    build_visa(tmp_path)  # 60x40 JPGs, masks valued 0/1 with a 20x20 box
    ds = AnomalyDataset(load_samples(tmp_path, "visa", "test"), imagenet_preprocess(S))
    item = ds[0]
    assert item["label"] == 1 and item["image"].shape == (3, S, S)
    # box x 10..30 of 60, y 5..25 of 40 -> nearest resize to 24: columns 4..11, rows 3..14 (hand computed)
    expected = torch.zeros(S, S)
    expected[3:15, 4:12] = 1
    torch.testing.assert_close(item["mask"][0], expected)


def test_cache_matches_decoding_and_opens_no_files(tmp_path: Path, monkeypatch) -> None:
    build_mvtec(tmp_path / "d")
    samples = load_samples(tmp_path / "d", "mvtec", "test")
    plain = AnomalyDataset(samples, imagenet_preprocess(S))
    cached = AnomalyDataset(samples, imagenet_preprocess(S), cache_dir=tmp_path / "cache", progress=False)
    assert cached.cache.was_built
    again = AnomalyDataset(samples, imagenet_preprocess(S), cache_dir=tmp_path / "cache", progress=False)
    assert not again.cache.was_built  # cache hit

    def no_open(*args, **kwargs):
        raise AssertionError("an image file was opened although the cache is built")

    monkeypatch.setattr(Image, "open", no_open)
    clone = pickle.loads(pickle.dumps(again))  # what a DataLoader worker receives
    for i in range(len(samples)):
        b, c = again[i], clone[i]
        torch.testing.assert_close(b["image"], c["image"])
        torch.testing.assert_close(b["mask"], c["mask"])
    monkeypatch.undo()
    for i in range(len(samples)):
        torch.testing.assert_close(plain[i]["image"], again[i]["image"], atol=0, rtol=0)
        torch.testing.assert_close(plain[i]["mask"], again[i]["mask"], atol=0, rtol=0)


def test_cache_invalidated_when_a_file_changes(tmp_path: Path) -> None:
    build_mvtec(tmp_path / "d")
    samples = load_samples(tmp_path / "d", "mvtec", "test", ["bottle"])
    first = AnomalyDataset(samples, imagenet_preprocess(S), cache_dir=tmp_path / "cache", progress=False)
    i = next(k for k, s in enumerate(samples) if s.label == 1)
    old_mask = first[i]["mask"].clone()
    mask_path = Path(samples[i].mask_path)
    write_mask(mask_path, (48, 48), (0, 0, 48, 48))  # the whole image is now anomalous
    st = os.stat(mask_path)
    os.utime(mask_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # make the change visible on any fs
    second = AnomalyDataset(samples, imagenet_preprocess(S), cache_dir=tmp_path / "cache", progress=False)
    assert second.cache.was_built and second.cache.dir == first.cache.dir  # rebuilt in place
    assert old_mask.sum() < S * S and second[i]["mask"].sum() == S * S
    # another size or file list is another cache
    other = AnomalyDataset(samples[:-1], imagenet_preprocess(S), cache_dir=tmp_path / "cache", progress=False)
    assert other.cache.was_built and other.cache.dir != first.cache.dir
    assert len(list((tmp_path / "cache" / "images").iterdir())) == 2


def test_raw_uint8_and_repr(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    ds = AnomalyDataset(load_samples(tmp_path, "mvtec", "test", ["grid"]), imagenet_preprocess(S))
    image, mask = ds.raw(0)
    assert image.dtype == np.uint8 and image.shape == (S, S, 3) and mask.shape == (S, S)
    assert np.array_equal(image[..., 0], image[..., 2])  # grayscale class became RGB
    assert "5 images" in repr(ds)
    with pytest.raises(ValueError, match="no samples"):
        AnomalyDataset([], imagenet_preprocess(S))
