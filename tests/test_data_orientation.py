"""EXIF orientation and reduced-size JPEG decoding (:mod:`omniad_lite.data.images`).

The expected pixels of each orientation are built here with NumPy from the EXIF specification (tag 0x0112:
where the stored 0th row and 0th column lie in the image as shown), not with Pillow's own transposition.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omniad_lite.data import images
from omniad_lite.data.cache import ImageCache
from omniad_lite.data.images import (
    DRAFT_MARGIN,
    DRAFT_MAX_TOLERANCE,
    DRAFT_MEAN_TOLERANCE,
    EXIF_ORIENTATION,
    decode_image,
    header_size,
    load_image,
    load_pair,
    preprocess_image,
)
from omniad_lite.data.sample import Sample

UPRIGHT_WH = (48, 32)  # width, height of the image as shown: not square, so a turn shows in the shape


def shown_from_stored(stored: np.ndarray, orientation: int) -> np.ndarray:
    """The image a viewer shows for ``stored`` pixels tagged ``orientation`` (EXIF 2.3, tag 0x0112)."""
    return {1: lambda a: a,
            2: lambda a: a[:, ::-1],  # mirrored left-right
            3: lambda a: a[::-1, ::-1],  # turned 180°
            4: lambda a: a[::-1],  # mirrored top-bottom
            5: lambda a: a.swapaxes(0, 1),  # 0th row = left column: transpose
            6: lambda a: np.rot90(a, -1),  # 0th row = right column: turn 90° clockwise to show
            7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transverse
            8: lambda a: np.rot90(a, 1)}[orientation](stored)  # 0th row = left column bottom-up: 90° anticlockwise


def stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores so that the image shows as ``upright`` under ``orientation``."""
    inverse = {6: 8, 8: 6}.get(orientation, orientation)  # the others are their own inverse
    return np.ascontiguousarray(shown_from_stored(upright, inverse))


def upright_pattern(seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` blocks of 8×8 colours: JPEG keeps them nearly exact, and no turn maps it onto itself."""
    rng = np.random.default_rng(seed)
    w, h = UPRIGHT_WH
    return np.kron(rng.integers(0, 256, (h // 8, w // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)


def save_with_orientation(path: Path, stored: np.ndarray, orientation: int, **kw) -> Path:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(stored).save(path, exif=exif, **kw)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_read_as_shown(tmp_path, orientation):
    upright = upright_pattern()
    path = save_with_orientation(tmp_path / f"o{orientation}.jpg", stored_for(upright, orientation), orientation,
                                 quality=95, subsampling=0)
    raw = np.asarray(Image.open(path).convert("RGB"))  # the stored pixels, decoded, not turned
    got = np.asarray(decode_image(path))
    assert got.shape == upright.shape  # (32, 48, 3) whatever the stored layout
    assert np.array_equal(got, shown_from_stored(raw, orientation))  # exactly the EXIF rule on the decoded pixels
    assert np.abs(got.astype(int) - upright).mean() < 3  # the upright picture, up to JPEG loss
    assert header_size(path) == UPRIGHT_WH  # from the header alone
    assert np.array_equal(load_image(path, 16), np.asarray(Image.fromarray(got).resize((16, 16), Image.BILINEAR)))


def test_masks_and_pairs_follow_the_same_rule(tmp_path):
    upright = upright_pattern()
    image = save_with_orientation(tmp_path / "img.jpg", stored_for(upright, 6), 6, quality=95)
    mask = np.zeros(upright.shape[:2], np.uint8)
    mask[:8, :16] = 255  # top-left corner as shown
    mask_path = save_with_orientation(tmp_path / "mask.png", stored_for(mask, 6), 6)
    img, m = load_pair(image, mask_path, 32)
    assert img.shape == (32, 32, 3) and m[:8, :10].all() and not m[16:].any()  # the mask as shown, not turned back
    Image.fromarray(mask).save(tmp_path / "upright_mask.png")  # an upright mask drawn on the image as shown
    assert load_pair(image, tmp_path / "upright_mask.png", 32)[1].sum() == m.sum()


def test_a_pil_image_passed_in_is_turned_once(tmp_path):
    upright = upright_pattern()
    path = save_with_orientation(tmp_path / "o6.png", stored_for(upright, 6), 6)
    expected = np.asarray(Image.fromarray(upright).resize((16, 16), Image.BILINEAR))
    assert np.array_equal(preprocess_image(Image.open(path), 16), expected)  # opened by the caller, still tagged
    assert np.array_equal(preprocess_image(decode_image(path), 16), expected)  # already turned: not turned again


def test_cache_stores_upright_images_and_is_keyed_by_the_decoding_rule(tmp_path, monkeypatch):
    upright = upright_pattern()
    path = save_with_orientation(tmp_path / "o8.png", stored_for(upright, 8), 8)
    samples = [Sample(str(path), None, "c", "good", 0)]
    cache = ImageCache(samples, 16, tmp_path / "cache", progress=False)
    expected = np.asarray(Image.fromarray(upright).resize((16, 16), Image.BILINEAR))
    assert np.array_equal(cache.get(0)[0], expected)
    monkeypatch.setattr("omniad_lite.data.cache.DECODE_VERSION", images.DECODE_VERSION + 1)
    other = ImageCache(samples, 16, tmp_path / "cache", progress=False)
    assert other.dir != cache.dir and other.was_built  # another rule: another cache, never the old one


def photo(size_wh: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A natural photo (scikit-image's astronaut) upscaled to ``size_wh`` with fine noise: camera-like content."""
    from skimage import data

    rng = np.random.default_rng(seed)
    base = Image.fromarray(data.astronaut()).resize(size_wh, Image.BICUBIC)
    noisy = np.asarray(base, dtype=np.float32) + rng.normal(0, 6, (size_wh[1], size_wh[0], 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size_wh,target", [((1600, 1200), 128), ((1200, 1600), 256), ((1024, 1000), 64)])
def test_reduced_jpeg_decoding_matches_the_full_decode(tmp_path, size_wh, target, monkeypatch):
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo(size_wh)).save(path, quality=90)
    decoded_sizes = []
    real = images.preprocess_image
    monkeypatch.setattr(images, "preprocess_image", lambda im, s: decoded_sizes.append(im.size) or real(im, s))
    fast, full = load_image(path, target), load_image(path, target, reduced=False)
    reduced_wh, full_wh = decoded_sizes
    assert full_wh == size_wh and reduced_wh[0] < size_wh[0]  # the decoder did reduce
    assert min(reduced_wh) >= DRAFT_MARGIN * target  # never below the stated margin
    diff = np.abs(fast.astype(np.int16) - full)
    assert diff.mean() < DRAFT_MEAN_TOLERANCE and diff.max() <= DRAFT_MAX_TOLERANCE


def test_small_and_non_jpeg_images_are_decoded_in_full(tmp_path, monkeypatch):
    Image.fromarray(photo((300, 200))).save(tmp_path / "small.jpg", quality=90)
    Image.fromarray(photo((1600, 1200))).save(tmp_path / "big.png")
    for name, target in (("small.jpg", 128), ("big.png", 64)):
        assert np.array_equal(load_image(tmp_path / name, target), load_image(tmp_path / name, target, reduced=False))


@pytest.mark.parametrize("suffix,kw", [(".png", {}), (".jpg", {"quality": 100, "subsampling": 0})])
def test_a_sideways_stored_portrait_predicts_like_the_upright_photo(tmp_path, tiny_model, suffix, kw):
    """Acceptance: a portrait stored sideways with orientation 6 (as phones store it) gets a portrait overlay and
    map, and the score of the same photo saved upright (PNG: exactly; JPEG: up to its re-encoding)."""
    from omniad_lite.evaluation.predict import predict
    from omniad_lite.evaluation.predict_files import predict_to_folder

    portrait = np.ascontiguousarray(np.rot90(photo((96, 48)), 1))  # (96, 48, 3): taller than wide
    Image.fromarray(portrait).save(tmp_path / f"upright{suffix}", **kw)
    shown = np.asarray(decode_image(tmp_path / f"upright{suffix}"))  # what a viewer shows of the upright file
    save_with_orientation(tmp_path / f"phone{suffix}", stored_for(shown, 6), 6, **kw)
    assert Image.open(tmp_path / f"phone{suffix}").size == (96, 48)  # stored landscape
    table = predict_to_folder(tiny_model, [tmp_path / f"upright{suffix}", tmp_path / f"phone{suffix}"],
                              tmp_path / "out", device="cpu", progress=False)
    upright_row, phone_row = table.iloc[0], table.iloc[1]
    overlay = Image.open(tmp_path / "out" / phone_row["overlay"])
    assert overlay.size[1] == 96 and overlay.size == Image.open(tmp_path / "out" / upright_row["overlay"]).size
    rel = 1e-6 if suffix == ".png" else 2e-2
    assert phone_row["score"] == pytest.approx(upright_row["score"], rel=rel)
    up, phone = predict(tiny_model, [str(tmp_path / f"upright{suffix}"), str(tmp_path / f"phone{suffix}")],
                        device="cpu")
    assert up.anomaly_map.shape == phone.anomaly_map.shape == (96, 48)
    if suffix == ".png":
        assert np.allclose(up.anomaly_map, phone.anomaly_map, atol=1e-6)
