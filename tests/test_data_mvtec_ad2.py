"""MVTec AD 2: the ``mvtec_ad2`` format on a fixture in the real layout, the protocol's numbers against
independent computations, and the submission checker on hand-made folders (no training here; the end-to-end
run through the CLI is tests/test_mvtec_ad2_end_to_end.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from helpers import MVTEC_AD2_CLASSES, build_mvtec_ad2
from PIL import Image
from scipy import ndimage
from sklearn.metrics import f1_score, precision_score, recall_score

from omniad_lite.cli import main
from omniad_lite.config import DataConfig
from omniad_lite.data import load_samples
from omniad_lite.data.factory import samples_from_config
from omniad_lite.data.formats.mvtec_ad2 import private_images
from omniad_lite.data.loading import detect_format
from omniad_lite.data.prepare import prepare_dataset
from omniad_lite.evaluation.mvtec_ad2 import FPR_LIMIT, aupro_05, segmentation_f1, validation_threshold
from omniad_lite.evaluation.submission import MAPS, MASKS, SubmissionError, check_submission


@pytest.fixture(scope="module")
def ad2(tmp_path_factory):
    root = tmp_path_factory.mktemp("ad2") / "mvtec_ad_2"
    return root, build_mvtec_ad2(root)


def test_every_split_is_read_as_written(ad2):
    root, n = ad2
    assert detect_format(root) == "mvtec_ad2"  # before "mvtec": its classes have train/good/ too
    train = load_samples(root, "auto", "train")
    validation = load_samples(root, "mvtec_ad2", "validation")
    test = load_samples(root, "mvtec_ad2", "test")
    k = len(n["classes"])
    assert len(train) == k * n["train"] and all(s.label == 0 for s in train)
    assert len(validation) == k * n["validation"] and all("/validation/good/" in s.image_path for s in validation)
    assert len(test) == k * (n["test_public_good"] + n["test_public_bad"])
    for s in test:
        assert "/test_public/" in s.image_path
        if s.label:
            assert s.mask_path == s.image_path.replace("/bad/", "/ground_truth/bad/").replace(".png", "_mask.png")
        else:
            assert s.mask_path is None
    for split, suffix in (("test_private", "regular"), ("test_private_mixed", "mixed")):
        found = private_images(root, split)
        assert sorted(found) == n["classes"] and all(len(v) == n[split] for v in found.values())
        assert all(p.name.endswith(f"_{suffix}.png") for v in found.values() for p in v)


def test_the_validation_normals_are_the_val_split(ad2):
    root, n = ad2
    cfg = DataConfig(root=str(root), format="mvtec_ad2", val_fraction=0.25)
    val = samples_from_config(cfg, "val")
    assert {s.image_path for s in val} == {s.image_path for s in load_samples(root, "mvtec_ad2", "validation")}
    assert len(samples_from_config(cfg, "train")) == len(n["classes"]) * n["train"]  # nothing held out of train/


def test_layout_errors_are_one_line(ad2, tmp_path):
    root, _ = ad2
    with pytest.raises(ValueError, match=r"split='validation' is not one of .*'mvtec'"):
        load_samples(root, "mvtec", "validation")
    with pytest.raises(ValueError, match="not a private MVTec AD 2 split"):
        private_images(root, "test_public")
    broken = tmp_path / "broken"
    build_mvtec_ad2(broken)
    mask = broken / "can" / "test_public" / "ground_truth" / "bad" / "001_regular_mask.png"
    mask.unlink()
    with pytest.raises(FileNotFoundError, match=f"expected {mask}"):
        load_samples(broken, "mvtec_ad2", "test")


def test_prepare_counts_every_split(ad2):
    root, n = ad2
    report = prepare_dataset(root, "mvtec_ad2", progress=False, log=lambda line: None)
    total = report["summary"].loc["total"]
    assert not report["problems"]
    assert total["validation"] == 2 * n["validation"] and total["test_private_mixed"] == 2 * n["test_private_mixed"]


def brute_force_aupro(maps: np.ndarray, masks: np.ndarray, limit: float) -> float:
    """PRO and FPR at every distinct threshold (positive when >= t), trapezoids up to ``limit``, ÷ ``limit``."""
    regions = []
    for m in masks:
        labels, k = ndimage.label(m, structure=np.ones((3, 3)))
        regions += [(len(regions), labels == r) for r in range(1, k + 1)]
    idx = [i for i, m in enumerate(masks) for _ in range(ndimage.label(m, structure=np.ones((3, 3)))[1])]
    fpr, pro = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        pred = maps >= t
        fpr.append(pred[~masks].mean())
        pro.append(np.mean([pred[i][r].mean() for i, (_, r) in zip(idx, regions)]))
    fpr, pro = np.array(fpr), np.array(pro)
    keep = fpr <= limit
    x, y = list(fpr[keep]), list(pro[keep])
    j = int(np.argmax(fpr > limit))  # first point past the limit: interpolate the curve there
    x.append(limit)
    y.append(pro[j - 1] + (pro[j] - pro[j - 1]) * (limit - fpr[j - 1]) / (fpr[j] - fpr[j - 1]))
    return float(np.trapezoid(y, x) / limit)


def test_aupro_05_and_segf1_match_independent_computations():
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 20, 24), bool)
    masks[0, 2:6, 3:9] = masks[1, 10:18, 10:13] = masks[1, 1:3, 1:3] = True
    maps = rng.random(masks.shape) + 0.8 * masks  # anomalies higher, overlapping the normals
    assert aupro_05(maps, masks) == pytest.approx(brute_force_aupro(maps, masks, FPR_LIMIT), abs=1e-9)
    t = 0.9
    got = segmentation_f1(maps, masks, t)
    y, p = masks.ravel(), (maps >= t).ravel()
    assert got["seg_f1"] == pytest.approx(f1_score(y, p))
    assert got["seg_precision"] == pytest.approx(precision_score(y, p))
    assert got["seg_recall"] == pytest.approx(recall_score(y, p))


def test_validation_threshold_is_mean_plus_three_std():
    maps = np.array([[[0.0, 0.0], [2.0, 2.0]]])  # mean 1, std 1
    assert validation_threshold(maps) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="validation/good"):
        validation_threshold(np.zeros((0, 4, 4)))


def write_valid_submission(root: Path, out: Path, split: str = "test_private") -> None:
    """A submission made by hand from the images' own sizes: float16 maps and 0/255 masks."""
    for cls, paths in private_images(root, split).items():
        for sub in (MAPS, MASKS):
            (out / sub / cls / split).mkdir(parents=True, exist_ok=True)
        for p in paths:
            w, h = Image.open(p).size
            tifffile.imwrite(out / MAPS / cls / split / f"{p.stem}.tiff", np.full((h, w), 0.5, np.float16))
            Image.fromarray(np.zeros((h, w), np.uint8)).save(out / MASKS / cls / split / f"{p.stem}.png")


def test_checker_passes_a_valid_folder_and_names_the_first_problem(ad2, tmp_path):
    root, n = ad2
    out = tmp_path / "sub"
    write_valid_submission(root, out)
    report = check_submission(out, root)
    assert report["images"] == len(n["classes"]) * n["test_private"] and not report["complete"]
    write_valid_submission(root, out, "test_private_mixed")
    assert check_submission(out, root)["complete"]
    cls = sorted(MVTEC_AD2_CLASSES)[0]
    w, h = Image.open(root / cls / "test_private" / "001_regular.png").size
    name = Path(cls) / "test_private" / "001_regular"
    cases = {
        "missing .tiff file": lambda d: (d / MAPS / name).with_suffix(".tiff").unlink(),
        "must have their image's full size": lambda d: tifffile.imwrite((d / MAPS / name).with_suffix(".tiff"),
                                                                        np.zeros((h // 2, w), np.float16)),
        "float16": lambda d: tifffile.imwrite((d / MAPS / name).with_suffix(".tiff"), np.zeros((h, w), np.float32)),
        "NaN or inf": lambda d: tifffile.imwrite((d / MAPS / name).with_suffix(".tiff"),
                                                 np.full((h, w), np.inf, np.float16)),
        "values other than 0 and 255": lambda d: Image.fromarray(np.full((h, w), 7, np.uint8)).save(
            (d / MASKS / name).with_suffix(".png")),
        "unexpected": lambda d: (d / MASKS / cls / "test_private" / "extra.png").write_bytes(b""),
        "missing split folder .*anomaly_images/can/test_private":
            lambda d: shutil.rmtree(d / MAPS / cls / "test_private"),
    }
    for i, (message, damage) in enumerate(cases.items()):
        broken = tmp_path / f"broken{i}"
        write_valid_submission(root, broken)
        damage(broken)
        with pytest.raises(SubmissionError, match=message):
            check_submission(broken, root)


def test_cli_check_rejects_in_one_line_with_rc_2(ad2, tmp_path, capsys):
    root, _ = ad2
    out = tmp_path / "sub"
    write_valid_submission(root, out)
    assert main(["submission", "--check", str(out), "--data-root", str(root)]) == 0
    assert "ok: " in capsys.readouterr().out
    (out / MAPS / "vial" / "test_private" / "000_regular.tiff").unlink()
    assert main(["submission", "--check", str(out), "--data-root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing .tiff file" in err and "vial/test_private/000_regular.tiff" in err
