"""omniad_lite.evaluation: evaluate/predict with a tiny fake model obeying the model contract, and once
with a real tiny Omni-AD (tf_efficientnet_lite0, random weights)."""
import csv

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from omniad_lite.data import Preprocess
from omniad_lite.evaluation.evaluator import evaluate
from omniad_lite.evaluation.metrics import compute_metrics
from omniad_lite.evaluation.prediction import predict
from omniad_lite.model.anomaly_map import anomaly_map, image_scores
from omniad_lite.results import EvalResult, Prediction

SIZE = 32
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


class FakeModel(nn.Module):
    """Features = pooled colours + a constant channel; reconstruction = the normal (grey) colour everywhere."""

    def __init__(self):
        super().__init__()
        self.preprocess = Preprocess(SIZE, MEAN, STD)
        self.normal = nn.Parameter(torch.tensor([0.0, 0.0, 0.0, 1.0]))

    def forward(self, images):
        feats = []
        for r in (4, 8, 16):
            f = F.avg_pool2d(images, r)  # (B, 3, S/r, S/r)
            feats.append(torch.cat([f, torch.ones_like(f[:, :1])], dim=1))  # (B, 4, S/r, S/r)
        return feats, [self.normal.view(1, 4, 1, 1).expand_as(f) for f in feats]


class ListDataset(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def make_items(n_per_class=6, classes=("b_cls", "a_cls"), size=SIZE, seed=0, anomalous=True):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_per_class):
        for cls in classes:  # interleaved classes: batches mix them
            rgb = np.clip(0.5 + 0.05 * rng.standard_normal((size, size, 3)), 0, 1)
            mask = np.zeros((size, size), np.float32)
            label = int(anomalous and i % 2 == 1)
            if label:
                y, x = rng.integers(0, size - 8, 2)
                h, w = rng.integers(3, 8, 2)
                rgb[y:y + h, x:x + w] = rng.random(3)
                mask[y:y + h, x:x + w] = 1
            image = (torch.from_numpy(rgb).permute(2, 0, 1).float() - 0.5) / 0.5
            items.append({"image": image, "mask": torch.from_numpy(mask)[None], "label": label, "cls_name": cls,
                          "path": f"{cls}/{i:03d}.png", "rgb": (rgb * 255).round().astype(np.uint8)})
    return items


def strip(items):
    return ListDataset([{k: v for k, v in it.items() if k != "rgb"} for it in items])


def test_evaluate_matches_per_class_compute_metrics():
    items = make_items()
    model = FakeModel()
    result = evaluate(model, strip(items), batch_size=4, device="cpu", progress=False, rounded=False)
    assert isinstance(result, EvalResult)
    table = result.table
    assert list(table.index) == ["a_cls", "b_cls", "mean"]
    assert table.attrs["protocol"] == result.protocol == "kit" and result.mode == "exact"
    with torch.no_grad():
        for cls in ("a_cls", "b_cls"):
            sel = [it for it in items if it["cls_name"] == cls]
            maps = anomaly_map(*model(torch.stack([it["image"] for it in sel])), SIZE)
            ref = compute_metrics(image_scores(maps), [it["label"] for it in sel], maps,
                                  torch.stack([it["mask"] for it in sel]))
            for k, v in ref.items():
                assert table.loc[cls, k] == pytest.approx(100 * v, abs=1e-9), (cls, k)
    assert table.loc["mean", "mad"] == pytest.approx(table.loc[["a_cls", "b_cls"], "mad"].mean())
    rounded = evaluate(model, strip(items), batch_size=5, device="cpu", progress=False).table
    assert (rounded.drop("mean") == table.drop("mean").round(1)).all().all()
    as_json = result.to_dict()
    assert as_json["protocol"] == "kit" and sorted(as_json["per_class"]) == ["a_cls", "b_cls"]
    assert as_json["mean"]["mad"] == pytest.approx(table.loc["mean", "mad"])
    assert list(result.per_image["path"]) == [it["path"] for it in items]  # dataset order


def test_evaluate_streaming_close_to_exact_and_released_protocol():
    ds = strip(make_items(seed=1))
    exact = evaluate(FakeModel(), ds, device="cpu", progress=False, rounded=False)
    stream = evaluate(FakeModel(), ds, device="cpu", progress=False, rounded=False, streaming=True)
    assert stream.mode == "streaming"
    np.testing.assert_allclose(stream.table.to_numpy(), exact.table.to_numpy(), atol=0.1)  # percent
    rel = evaluate(FakeModel(), ds, device="cpu", progress=False, protocol="released")
    assert rel.table.attrs["protocol"] == rel.protocol == "released"


def test_evaluate_return_maps_deterministic_and_restores_mode():
    items = make_items(seed=2)
    model = FakeModel().train()
    r1 = evaluate(model, strip(items), batch_size=3, device="cpu", progress=False, keep_maps=True)
    assert model.training  # mode restored
    r2 = evaluate(model, strip(items), batch_size=7, device="cpu", progress=False, keep_maps=True)
    assert r1.table.equals(r2.table) and np.array_equal(r1.maps, r2.maps)
    assert r1.maps.shape == (len(items), SIZE, SIZE) and r1.maps.dtype == np.float16
    images = r1.per_image
    assert list(images["path"]) == [it["path"] for it in items]
    assert list(images["cls_name"]) == [it["cls_name"] for it in items]
    np.testing.assert_array_equal(images["label"], [it["label"] for it in items])
    np.testing.assert_array_equal(r1.masks, np.stack([it["mask"][0].numpy() for it in items]))
    np.testing.assert_allclose(images["score"], r1.maps.reshape(len(items), -1).max(1), atol=1e-3)
    assert evaluate(model, strip(items), device="cpu", progress=False).maps is None  # maps only when asked


def test_evaluate_class_without_anomalies_names_the_class():
    items = make_items(classes=("good_only",), anomalous=False) + make_items(classes=("ok",), seed=3)
    with pytest.raises(ValueError, match="class 'good_only'.*undefined"):
        evaluate(FakeModel(), strip(items), device="cpu", progress=False)
    table = evaluate(FakeModel(), strip(items), device="cpu", progress=False, allow_undefined=True).table
    assert np.isnan(table.loc["good_only", "image_auroc"]) and not np.isnan(table.loc["ok", "image_auroc"])


def test_predict_paths_pil_and_tensors_agree(tmp_path):
    items = make_items(n_per_class=2, classes=("x",), seed=4)
    paths = []
    for i, it in enumerate(items):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(it["rgb"]).save(paths[-1])
    model = FakeModel()
    from_paths = predict(model, [str(p) for p in paths], device="cpu")
    from_pil = predict(model, [Image.open(p) for p in paths], device="cpu")
    normalised = torch.stack([(torch.from_numpy(it["rgb"]).permute(2, 0, 1).float() / 255 - 0.5) / 0.5
                              for it in items])
    from_tensor = predict(model, normalised, device="cpu")
    assert all(isinstance(p, Prediction) for p in from_paths) and len(from_paths) == 2
    assert [p.path for p in from_paths] == [str(p) for p in paths] and from_tensor[0].path is None

    def maps(preds):
        return np.stack([p.anomaly_map for p in preds])

    def scores(preds):
        return np.array([p.score for p in preds])

    assert maps(from_paths).shape == (2, SIZE, SIZE)
    np.testing.assert_allclose(maps(from_paths), maps(from_tensor), atol=1e-6)
    np.testing.assert_allclose(scores(from_pil), scores(from_tensor), atol=1e-6)
    with torch.no_grad():
        ref = anomaly_map(*model(normalised), SIZE)
    np.testing.assert_allclose(maps(from_tensor), ref.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="PIL"):
        predict(model, [3.0], device="cpu")


def test_real_tiny_model_evaluate_predict_and_cli(tmp_path, tiny_model, tiny_model_config):
    from omniad_lite import ExperimentConfig, RunDir

    run = RunDir(tmp_path / "run")
    run.save_config(ExperimentConfig(model=tiny_model_config))
    run.save_model(tiny_model)
    model = tiny_model
    items = make_items(n_per_class=4, classes=("p", "q"), size=64, seed=5)
    table = evaluate(model, strip(items), batch_size=4, device="cpu", progress=False).table
    assert list(table.index) == ["p", "q", "mean"]
    assert ((table >= 0) & (table <= 100)).all().all()
    paths = []
    for i, it in enumerate(items[:3]):
        sub = tmp_path / f"d{i % 2}"  # two files share a name: both heatmaps must be kept
        sub.mkdir(exist_ok=True)
        paths.append(sub / f"im{i // 2}.png")
        Image.fromarray(it["rgb"]).save(paths[-1])
    out = tmp_path / "out"
    from omniad_lite.cli import main
    assert main(["predict", "--run", str(run), *map(str, paths), "--out", str(out), "--device", "cpu"]) == 0
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    assert len({r["overlay"] for r in rows}) == 3  # two files share a name: both overlays are kept
    for r in rows:
        w, h = Image.open(out / r["overlay"]).size
        assert h == 64 and w > 64  # the image at its own size, then the colour bar
        assert r["decision"] == "" and r["threshold"] == ""  # this run has no thresholds.json: scores only
    ref = predict(model, [str(p) for p in paths], device="cpu")
    np.testing.assert_allclose([float(r["score"]) for r in rows], [p.score for p in ref], atol=1e-5)
    assert main(["predict", "--run", str(run), str(tmp_path / "missing.png"), "--out", str(out)]) == 2
