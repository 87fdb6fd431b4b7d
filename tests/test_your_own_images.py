"""Your own images end to end: a flat good/bad folder without masks → `omniad-lite train` → thresholds →
`omniad-lite predict` on a folder (with an unreadable file) → `omniad-lite calibrate`.

One tiny run (lite0 at random init, 2 optimiser steps) is trained once for the module; the checks compare
with independent expectations (scikit-learn's metrics, the held-out images scored again, the FPR bound).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_config
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from omniad_lite.cli import main
from omniad_lite.errors import DataWarning, MetricWarning
from omniad_lite.evaluation.evaluator import evaluate
from omniad_lite.evaluation.prediction import choose_class, predict
from omniad_lite.evaluation.run_loading import load_run
from omniad_lite.evaluation.thresholds import POOLED, Thresholds, build_thresholds
from omniad_lite.run import RunDir

pytestmark = pytest.mark.slow
FPR = 0.2


def build_flat_textures(root: Path, n_good: int = 16, n_bad: int = 5) -> Path:
    """good/: smooth textures of two sizes (one not square); bad/: the same with a bright square; no masks."""
    rng = np.random.default_rng(0)

    def texture(h: int, w: int) -> np.ndarray:
        base = rng.normal(128, 20, (h // 4, w // 4, 3))
        return np.clip(np.kron(base, np.ones((4, 4, 1))) + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)

    for i in range(n_good):
        (root / "good").mkdir(parents=True, exist_ok=True)
        Image.fromarray(texture(48, 64 if i % 2 else 48)).save(root / "good" / f"{i:03d}.png")
    for i in range(n_bad):
        img = texture(48, 48)
        img[10:26, 12:28] = 250
        (root / "bad").mkdir(exist_ok=True)
        Image.fromarray(img).save(root / "bad" / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("own_images")
    root = build_flat_textures(tmp / "parts")
    cfg = tiny_config(root, tmp / "cache", iterations=2).with_overrides(
        {"data.format": "auto", "data.root": None, "data.val_fraction": 0.25})
    cfg.save(tmp / "cfg.json")
    run = tmp / "run"
    assert main(["train", "--config", str(tmp / "cfg.json"), "--data-root", str(root), "--out", str(run)]) == 0
    return root, run, tmp


def test_training_holds_out_and_calibrates(flat_run):
    root, run, _ = flat_run
    cfg = RunDir(run).load_config()
    assert cfg.data.root == str(root) and cfg.data.val_fraction == 0.25 and cfg.data.val_seed == 0
    th = json.loads((run / "thresholds.json").read_text())
    assert th["method"] == "fpr" and th["fpr"] == 0.01
    e = th["classes"]["parts"]
    n_train_good = 16 - round(0.2 * 16)  # the flat format keeps 20 % of good/ for the test split
    assert e["n_normal"] == round(0.25 * n_train_good) == len(e["normal_paths"])
    from omniad_lite.data.factory import samples_from_config
    trained_on = {s.image_path for s in samples_from_config(cfg.data, "train")}
    assert not trained_on & set(e["normal_paths"])  # held out: never trained on
    # the held-out images scored again give the saved scores, and the threshold flags none of them (1 % of 3)
    again = [p.score for p in predict(run, e["normal_paths"], device="cpu")]
    np.testing.assert_allclose(again, e["normal_scores"], rtol=1e-5)
    assert sum(s >= e["threshold"] for s in again) <= math.floor(0.01 * len(again))
    assert "only 3 held-out normal image(s)" in e["warning"]


def test_maskless_evaluation_matches_sklearn_and_notes_once(flat_run, capsys):
    _, run, _ = flat_run

    loaded = load_run(run)
    with pytest.warns(MetricWarning) as seen:
        result = evaluate(loaded.model, loaded.config, device="cpu", progress=False)
    rows = result.per_image
    assert rows["label"].sum() == 5 and not rows.loc[rows["label"] == 1, "mask_valid"].any()
    per_class = result.per_class["parts"]
    assert per_class["image_auroc"] == pytest.approx(roc_auc_score(rows["label"], rows["score"]))
    assert per_class["image_ap"] == pytest.approx(average_precision_score(rows["label"], rows["score"]))
    for m in ("pixel_auroc", "pixel_ap", "pixel_f1max", "pixel_aupro", "mad"):
        assert np.isnan(per_class[m])  # undefined, never 0
    notes = [str(w.message) for w in seen if w.category is MetricWarning]
    assert len(notes) == 1 and "5 anomalous test image(s) of class(es) ['parts'] have no mask" in notes[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["final"]["per_class"]["parts"]["pixel_auroc"] is None


def test_cli_predict_folder_with_an_unreadable_file(flat_run, capsys):
    root, run, tmp = flat_run
    folder = tmp / "incoming"
    folder.mkdir()
    for name in ("000.png", "001.png"):
        (folder / f"good_{name}").write_bytes((root / "good" / name).read_bytes())
    (folder / "bad_000.png").write_bytes((root / "bad" / "000.png").read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG truncated")
    (folder / "notes.txt").write_text("ignored: not an image")
    out = tmp / "pred"
    capsys.readouterr()
    with pytest.warns(DataWarning, match="broken.png"):
        assert main(["predict", "--run", str(run), str(folder), "--out", str(out), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "decision" in captured.out and "1 unreadable file(s)" in captured.out
    rows = {Path(r["path"]).name: r for r in csv.DictReader(open(out / "scores.csv"))}
    assert set(rows) == {"bad_000.png", "broken.png", "good_000.png", "good_001.png"}
    assert rows["broken.png"]["decision"] == "error" and rows["broken.png"]["error"]
    preds = {Path(p.path).name: p for p in predict(run, sorted(str(p) for p in folder.glob("*_0*.png")), device="cpu")}
    for name, pred in preds.items():
        r = rows[name]
        assert r["class"] == "parts" and float(r["score"]) == pytest.approx(pred.score, rel=1e-5)
        assert r["decision"] == ("anomalous" if pred.is_anomalous else "normal")
        assert float(r["normalized_score"]) == pytest.approx(pred.normalized_score, rel=1e-4)
        w, h = Image.open(folder / name).size
        assert pred.anomaly_map.shape == (h, w)  # the map at the image's own size and aspect
        overlay = Image.open(out / r["overlay"])
        assert overlay.size[1] == h and overlay.size[0] > w  # the image at full size, then the colour bar
    assert preds["good_001.png"].anomaly_map.shape == (48, 64)  # not square


def test_cli_calibrate_records_the_choice(flat_run, capsys):
    _, run, _ = flat_run
    before = json.loads((run / "thresholds.json").read_text())
    assert main(["calibrate", "--run", str(run), "--method", "f1", "--fpr", str(FPR)]) == 0
    after = json.loads((run / "thresholds.json").read_text())
    assert after["method"] == "f1" and after["fpr"] == FPR
    e = after["classes"]["parts"]
    assert e["method"] == "f1" and e["threshold"] == e["f1_threshold"] and "tuned on test data" in e["f1_tuned_on"]
    assert e["normal_scores"] == before["classes"]["parts"]["normal_scores"]  # re-chosen, not re-scored
    assert "method f1, fpr 0.2" in capsys.readouterr().out
    assert main(["calibrate", "--run", str(run), "--method", "fpr", "--fpr", "0.01"]) == 0


def test_class_choice_for_multi_class_runs():
    normal = {c: ([0.1, 0.2, 0.3], ["a", "b", "c"]) for c in ("bottle", "cable")}
    th = Thresholds(build_thresholds(normal, None))
    assert choose_class("/data/bottle/test/crack/000.png", None, th) == "bottle"
    assert choose_class("/data/cable/000.png", None, th) == "cable"
    assert choose_class("/data/misc/000.png", None, th) == POOLED
    assert choose_class("/data/bottle/000.png", "cable", th) == "cable"  # explicit wins
    with pytest.raises(ValueError, match="class 'tile' has no threshold in this run; its classes: bottle, cable"):
        choose_class("/x.png", "tile", th)
    assert choose_class("/data/misc/0.png", None, Thresholds(build_thresholds({"only": normal["cable"]}, None))) \
        == "only"


def test_cli_predict_bad_paths_fail_before_any_work(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    out = tmp_path / "out"
    assert main(["predict", "--run", str(tmp_path / "no_run"), str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no images in folder" in capsys.readouterr().err and not out.exists()
    assert main(["predict", "--run", str(tmp_path / "no_run"), str(tmp_path / "gone.png"), "--out", str(out)]) == 2
    assert "not found:" in capsys.readouterr().err and not out.exists()
