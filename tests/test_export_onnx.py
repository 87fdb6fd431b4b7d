"""ONNX export: ONNX Runtime against torch on real demo images (maps, scores, decisions), dynamic batch,
thresholds in the metadata, and the refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from omniad_lite import ExperimentConfig, RunDir
from omniad_lite.data import default_cache_dir, demo_root, load_samples
from omniad_lite.evaluation.prediction import predict
from omniad_lite.evaluation.thresholds import build_thresholds
from omniad_lite.export.onnx import OnnxScorer, export_onnx

pytestmark = pytest.mark.slow
CLASSES = ["coffee", "coins"]
MAP_TOLERANCE = 1e-4  # of the map's range (the acceptance bound)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model_config):
    """A tiny run (random init) with thresholds calibrated on demo train images, exported to ONNX."""
    from omniad_lite.model import build_model

    tmp = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    model = build_model(tiny_model_config).eval()
    run = RunDir(tmp / "run")
    run.save_config(ExperimentConfig(model=tiny_model_config))
    run.save_model(model)
    root = demo_root(default_cache_dir())
    normal, test = {}, {}
    for cls in CLASSES:
        train = [s.image_path for s in load_samples(root, "mvtec", "train", [cls])][:6]
        normal[cls] = ([p.score for p in predict(model, train, device="cpu")], train)
    for cls in CLASSES:
        samples = load_samples(root, "mvtec", "test", [cls])[::3]
        test[cls] = ([p.score for p in predict(model, [s.image_path for s in samples], device="cpu")],
                     [s.label for s in samples])
    run.write_thresholds(build_thresholds(normal, test, fpr=0.2))
    path = export_onnx(run, tmp / "model.onnx")
    return run, path, root


def test_onnx_runtime_matches_torch_on_demo_images(exported):
    run, path, root = exported
    samples = [s for c in CLASSES for s in load_samples(root, "mvtec", "test", [c])[:6]]
    paths = [s.image_path for s in samples]
    torch_preds = predict(run, paths, original_size=False, device="cpu")
    scorer = OnnxScorer(path)
    images = np.stack([scorer.load(p) for p in paths])  # (N, 3, S, S) uint8
    maps, scores = scorer.run(images)
    ref = np.stack([p.anomaly_map for p in torch_preds])  # (N, S, S)
    assert maps.shape == ref.shape and scores.shape == (len(paths),)
    assert np.abs(maps - ref).max() <= MAP_TOLERANCE * (ref.max() - ref.min())
    np.testing.assert_allclose(scores, [p.score for p in torch_preds], rtol=1e-5)
    decisions = [scorer.decide(s, p.cls_name)[2] for s, p in zip(scores, torch_preds)]
    assert decisions == [p.is_anomalous for p in torch_preds]
    assert {p.cls_name for p in torch_preds} == set(CLASSES)  # chosen from the demo folders' names
    assert 0 < sum(decisions) < len(decisions)  # both decisions occur, so "identical" means something
    one_maps, one_scores = scorer.run(images[:1])  # dynamic batch
    np.testing.assert_allclose(one_maps[0], maps[0], atol=1e-6)


def test_metadata_holds_thresholds_and_preprocess(exported):
    run, path, _ = exported
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    saved = run.read_thresholds()
    th = json.loads(meta["omniad_lite.thresholds"])
    for cls in CLASSES:
        assert th["classes"][cls]["threshold"] == saved["classes"][cls]["threshold"]
        assert th["classes"][cls]["normal_level"] == saved["classes"][cls]["normal_level"]
    assert th["method"] == "fpr" and th["fpr"] == 0.2 and th["all"]["threshold"] == saved["all"]["threshold"]
    pre = json.loads(meta["omniad_lite.preprocess"])
    assert pre["image_size"] == 64 and pre["mean"] == [0.5, 0.5, 0.5] and "uint8" in pre["input"]


def test_scorer_session_options_keep_the_outputs(exported):
    """The scorer's session options (threads, no spin-waiting) against ONNX Runtime's defaults: same outputs."""
    import onnxruntime as ort

    _, path, root = exported
    scorer = OnnxScorer(path, threads=1)
    opts = scorer.session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    paths = [s.image_path for s in load_samples(root, "mvtec", "test", CLASSES[:1])[:3]]
    images = np.stack([scorer.load(p) for p in paths])  # (3, 3, S, S) uint8
    maps, scores = scorer.run(images)
    ref_maps, ref_scores = plain.run(None, {"images": images})
    np.testing.assert_allclose(maps, ref_maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)


def test_resampled_ffn_is_refused(tmp_path, tiny_model_config):
    from dataclasses import replace

    from omniad_lite.model import build_model

    cfg = replace(tiny_model_config, ffn="resampled")
    run = RunDir(tmp_path / "run")
    run.save_config(ExperimentConfig(model=cfg))
    run.save_model(build_model(cfg))
    with pytest.raises(ValueError, match="ffn='resampled'.*train with model.ffn='learned'"):
        export_onnx(run, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
