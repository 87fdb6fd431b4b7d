"""MVTec AD 2 end to end through the CLI, on a fixture in the real layout (tests/helpers.py ``build_mvtec_ad2``):
``train --preset paper-mvtec-ad2`` (tiny model, one step) → ``eval --protocol mvtec_ad2`` on test_public →
``submission`` of a private split → ``submission --check`` passes it and rejects a missing or resized map."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from helpers import TINY_MODEL, build_mvtec_ad2
from PIL import Image

from omniad_lite.cli import main
from omniad_lite.data.formats.mvtec_ad2 import private_images
from omniad_lite.evaluation.mvtec_ad2 import COLUMNS, validation_threshold
from omniad_lite.evaluation.submission import MAPS, MASKS

pytestmark = pytest.mark.slow
TINY = [f"model.{k}={json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in TINY_MODEL.items()]


@pytest.fixture(scope="module")
def ad2_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ad2_e2e")
    root = tmp / "mvtec_ad_2"
    counts = build_mvtec_ad2(root)
    overrides = [*TINY, "train.iterations=1", "train.batch_size=4", "train.device=\"cpu\"",
                 "train.cache_teacher_features=\"off\"", f"data.cache_dir={json.dumps(str(tmp / 'cache'))}"]
    args = ["train", "--preset", "paper-mvtec-ad2", "--data-root", str(root), "--out", str(tmp / "run")]
    assert main(args + [a for o in overrides for a in ("--set", o)]) == 0
    return root, tmp / "run", counts, tmp


def test_eval_reports_the_ad2_protocol_on_test_public(ad2_run, capsys):
    root, run, counts, _ = ad2_run
    thresholds = json.loads((run / "thresholds.json").read_text())
    assert "validation" in json.dumps(thresholds)  # calibrated on the validation normals, not on test images
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--protocol", "mvtec_ad2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for column in COLUMNS:
        assert column in out
    written = sorted((run / "evaluations").glob("*-mvtec_ad2.json"))
    result = json.loads(written[-1].read_text())
    assert result["protocol"] == "mvtec_ad2" and set(result["final"]["per_class"]) == set(counts["classes"])
    assert result["final"]["num_images"] == 2 * (counts["test_public_good"] + counts["test_public_bad"])
    for row in result["final"]["per_class"].values():
        assert 0 <= row["aupro_05"] <= 100 and 0 <= row["seg_f1"] <= 100 and row["threshold"] > 0


def test_submission_writes_full_size_maps_and_masks_that_the_check_accepts(ad2_run, capsys):
    root, run, counts, tmp = ad2_run
    out = tmp / "submission"
    assert main(["submission", "--run", str(run), "--split", "test_private", "--out", str(out), "--device", "cpu"]) == 0
    images = private_images(root, "test_private")
    for cls, paths in images.items():
        maps = sorted((out / MAPS / cls / "test_private").iterdir())
        masks = sorted((out / MASKS / cls / "test_private").iterdir())
        assert [p.name for p in maps] == [p.stem + ".tiff" for p in paths]  # one map per private image
        assert [p.name for p in masks] == [p.stem + ".png" for p in paths]  # one mask per private image
        for image, m, k in zip(paths, maps, masks):
            w, h = Image.open(image).size
            amap, mask = tifffile.imread(m), np.asarray(Image.open(k))
            assert amap.dtype == np.float16 and amap.shape == (h, w)  # original size (one image is twice as big)
            assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
    assert {Image.open(p).size for p in images["can"]} == {(64, 48), (128, 96)}
    capsys.readouterr()
    assert main(["submission", "--check", str(out), "--data-root", str(root)]) == 0
    assert f"{2 * counts['test_private']} maps and masks" in capsys.readouterr().out


def test_masks_are_the_maps_at_the_validation_threshold(ad2_run):
    """The mask is 255 exactly where the full-size map reaches mean + 3 std of the validation maps."""
    import torch

    from omniad_lite.data import dataset_from_config
    from omniad_lite.evaluation.inference import iter_maps
    from omniad_lite.run import load_run

    root, run, _, tmp = ad2_run
    loaded = load_run(run, device="cpu")
    val = dataset_from_config(loaded.config.data, "val", loaded.model.preprocess, progress=False)
    batches = [torch.utils.data.default_collate([val[i] for i in range(len(val))])]
    maps = {c: [] for c in ("can", "vial")}
    for batch, m, _ in iter_maps(loaded.model, batches, device="cpu"):
        for cls, one in zip(batch["cls_name"], m):
            maps[cls].append(one)
    threshold = validation_threshold(np.stack(maps["vial"]))
    folder = tmp / "submission"
    amap = tifffile.imread(folder / MAPS / "vial" / "test_private" / "001_regular.tiff").astype(np.float32)
    mask = np.asarray(Image.open(folder / MASKS / "vial" / "test_private" / "001_regular.png"))
    near = np.abs(amap - threshold) < 2e-3  # float16 rounding of the stored map
    assert np.array_equal((mask == 255)[~near], (amap >= threshold)[~near])


@pytest.mark.parametrize("damage", ["missing", "resized"])
def test_check_rejects_a_missing_or_resized_map_in_one_line(ad2_run, tmp_path, capsys, damage):
    import shutil

    root, _, _, tmp = ad2_run
    out = tmp_path / "sub"
    shutil.copytree(tmp / "submission", out)
    tiff = out / MAPS / "can" / "test_private" / "000_regular.tiff"
    if damage == "missing":
        tiff.unlink()
    else:
        amap = tifffile.imread(tiff)
        tifffile.imwrite(tiff, np.asarray(Image.fromarray(amap.astype(np.float32)).resize((64, 48)), np.float16))
    capsys.readouterr()
    assert main(["submission", "--check", str(out), "--data-root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "000_regular.tiff" in err
    assert ("missing" in err) if damage == "missing" else ("full size" in err)
