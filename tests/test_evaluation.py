"""omniad_lite.evaluation: evaluate/predict with a tiny fake model obeying the model contract, and once
with a real tiny Omni-AD (tf_efficientnet_lite0, random weights)."""
import csv
from argparse import Namespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from omniad_lite.evaluation import evaluate, predict, predict_cli
from omniad_lite.metrics import compute_metrics
from omniad_lite.scoring import anomaly_map, image_scores

SIZE = 32
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


class FakeEncoder(nn.Module):
    mean, std = MEAN, STD


class FakeModel(nn.Module):
    """Features = pooled colours + a constant channel; reconstruction = the normal (grey) colour everywhere."""

    def __init__(self):
        super().__init__()
        self.encoder = FakeEncoder()
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
    table = evaluate(model, strip(items), batch_size=4, device="cpu", progress=False, rounded=False)
    assert list(table.index) == ["a_cls", "b_cls", "mean"]
    assert table.attrs["protocol"] == "kit" and table.attrs["mode"] == "exact"
    with torch.no_grad():
        for cls in ("a_cls", "b_cls"):
            sel = [it for it in items if it["cls_name"] == cls]
            maps = anomaly_map(*model(torch.stack([it["image"] for it in sel])), SIZE)
            ref = compute_metrics(image_scores(maps), [it["label"] for it in sel], maps,
                                  torch.stack([it["mask"] for it in sel]))
            for k, v in ref.items():
                assert table.loc[cls, k] == pytest.approx(100 * v, abs=1e-9), (cls, k)
    assert table.loc["mean", "mad"] == pytest.approx(table.loc[["a_cls", "b_cls"], "mad"].mean())
    rounded = evaluate(model, strip(items), batch_size=5, device="cpu", progress=False)
    assert (rounded.drop("mean") == table.drop("mean").round(1)).all().all()


def test_evaluate_streaming_close_to_exact_and_released_protocol():
    ds = strip(make_items(seed=1))
    exact = evaluate(FakeModel(), ds, device="cpu", progress=False, rounded=False)
    stream = evaluate(FakeModel(), ds, device="cpu", progress=False, rounded=False, streaming=True)
    assert stream.attrs["mode"] == "streaming"
    np.testing.assert_allclose(stream.to_numpy(), exact.to_numpy(), atol=0.1)  # percent
    rel = evaluate(FakeModel(), ds, device="cpu", progress=False, protocol="released")
    assert rel.attrs["protocol"] == "released"


def test_evaluate_return_maps_deterministic_and_restores_mode():
    items = make_items(seed=2)
    model = FakeModel().train()
    t1, info = evaluate(model, strip(items), batch_size=3, device="cpu", progress=False, return_maps=True)
    assert model.training  # mode restored
    t2, info2 = evaluate(model, strip(items), batch_size=7, device="cpu", progress=False, return_maps=True)
    assert t1.equals(t2) and np.array_equal(info["maps"], info2["maps"])
    assert info["maps"].shape == (len(items), SIZE, SIZE) and info["maps"].dtype == np.float16
    assert info["paths"] == [it["path"] for it in items]
    assert info["cls_names"] == [it["cls_name"] for it in items]
    np.testing.assert_array_equal(info["labels"], [it["label"] for it in items])
    np.testing.assert_array_equal(info["masks"], np.stack([it["mask"][0].numpy() for it in items]))
    np.testing.assert_allclose(info["scores"], info["maps"].reshape(len(items), -1).max(1), atol=1e-3)


def test_evaluate_class_without_anomalies_names_the_class():
    items = make_items(classes=("good_only",), anomalous=False) + make_items(classes=("ok",), seed=3)
    with pytest.raises(ValueError, match="class 'good_only'.*undefined"):
        evaluate(FakeModel(), strip(items), device="cpu", progress=False)
    table = evaluate(FakeModel(), strip(items), device="cpu", progress=False, allow_undefined=True)
    assert np.isnan(table.loc["good_only", "image_auroc"]) and not np.isnan(table.loc["ok", "image_auroc"])


def test_predict_paths_pil_and_tensors_agree(tmp_path):
    items = make_items(n_per_class=2, classes=("x",), seed=4)
    paths = []
    for i, it in enumerate(items):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(it["rgb"]).save(paths[-1])
    model = FakeModel()
    from_paths = predict(model, [str(p) for p in paths], image_size=SIZE, device="cpu")
    from_pil = predict(model, [Image.open(p) for p in paths], image_size=SIZE, device="cpu")
    normalised = torch.stack([(torch.from_numpy(it["rgb"]).permute(2, 0, 1).float() / 255 - 0.5) / 0.5
                              for it in items])
    from_tensor = predict(model, normalised, device="cpu")
    assert from_paths["maps"].shape == (2, SIZE, SIZE) and from_paths["scores"].shape == (2,)
    np.testing.assert_allclose(from_paths["maps"], from_tensor["maps"], atol=1e-6)
    np.testing.assert_allclose(from_pil["scores"], from_tensor["scores"], atol=1e-6)
    with torch.no_grad():
        ref = anomaly_map(*model(normalised), SIZE)
    np.testing.assert_allclose(from_tensor["maps"], ref.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="PIL"):
        predict(model, [3.0], device="cpu")


def _tiny_real_run(tmp_path):
    from omniad_lite import presets
    from omniad_lite.checkpoint import save_config, save_model
    from omniad_lite.model import build_model

    cfg = presets.get("demo").with_overrides(["model.encoder_weights=null", "model.decoder_depths=[1,1,1,1]",
                                              "data.image_size=64"])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    run = tmp_path / "run"
    save_config(run, cfg)
    save_model(run, model)
    return run, cfg, model


def test_real_tiny_model_evaluate_predict_and_cli(tmp_path):
    pytest.importorskip("omniad_lite.model")
    run, cfg, model = _tiny_real_run(tmp_path)
    items = make_items(n_per_class=4, classes=("p", "q"), size=64, seed=5)
    table = evaluate(model, strip(items), batch_size=4, device="cpu", progress=False)
    assert list(table.index) == ["p", "q", "mean"]
    assert ((table >= 0) & (table <= 100)).all().all()
    paths = []
    for i, it in enumerate(items[:3]):
        sub = tmp_path / f"d{i % 2}"  # two files share a name: both heatmaps must be kept
        sub.mkdir(exist_ok=True)
        paths.append(sub / f"im{i // 2}.png")
        Image.fromarray(it["rgb"]).save(paths[-1])
    out = tmp_path / "out"
    predict_cli(Namespace(run=str(run), images=[str(p) for p in paths], out=str(out), device="cpu"))
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    assert len({r["heatmap"] for r in rows}) == 3
    for r in rows:
        assert Image.open(out / r["heatmap"]).size == (64, 64)
    ref = predict(model, [str(p) for p in paths], image_size=64, device="cpu")
    np.testing.assert_allclose([float(r["score"]) for r in rows], ref["scores"], atol=1e-5)
    from omniad_lite.cli import main
    assert main(["predict", "--run", str(run), str(tmp_path / "missing.png"), "--out", str(out)]) == 2
