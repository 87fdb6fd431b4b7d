"""docs/images/make_diagrams.py redraws the committed diagrams, and the shapes it writes are the models' own."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from omniad_lite import presets
from omniad_lite.model import build_model
from omniad_lite.model.encoder import FrozenEncoder

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
NAMES = ("pipeline.png", "omni_block.png")
MAX_MEAN_PIXEL_DIFFERENCE = 0.02  # another matplotlib/freetype may move a glyph edge, not a box


def _script():
    spec = importlib.util.spec_from_file_location("make_diagrams", IMAGES / "make_diagrams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def test_script_redraws_the_committed_images(tmp_path):
    written = _script().main([str(tmp_path)])
    assert [p.name for p in written] == list(NAMES)
    for name in NAMES:
        new, committed = _pixels(tmp_path / name), _pixels(IMAGES / name)
        assert new.shape == committed.shape, name  # same size in pixels
        assert new.std() > 0.05, f"{name} is (nearly) blank"
        diff = float(np.abs(new - committed).mean())
        assert diff < MAX_MEAN_PIXEL_DIFFERENCE, f"{name}: committed image is stale (mean difference {diff:.3f}); " \
                                                 "run python docs/images/make_diagrams.py"


def test_shapes_on_the_pipeline_are_the_demo_models():
    cfg = presets.get("demo").model
    model = build_model(dataclasses.replace(cfg, encoder_weights=None))
    with torch.no_grad():
        features, reconstructions = model.eval()(torch.zeros(1, 3, cfg.image_size, cfg.image_size))
        fused = model.neck(features)
    shapes = _script().SHAPES
    for i, f in enumerate(features, 1):
        assert shapes[f"f{i}"][1] == f"{f.shape[1]} × {f.shape[2]}²"
    assert shapes["neck"][1] == f"{fused.shape[1]} × {fused.shape[2]}²"
    for i, stage in enumerate(model.decoder.stages):
        n, side = len(stage.blocks), fused.shape[2] * 2 ** i
        assert shapes[f"stage{i}"][1] == f"{model.decoder.dims[i]} × {side}², {n} block{'s' if n > 1 else ''}"
    assert [tuple(r.shape) for r in reconstructions] == [tuple(f.shape) for f in features]


def test_shapes_on_the_pipeline_are_the_paper_models():
    """The paper model's decoder takes seconds to build: its shapes follow from the encoder and the config."""
    cfg = presets.get("paper-mvtec").model
    encoder = FrozenEncoder(cfg.encoder, None, cfg.out_indices)
    side, shapes = cfg.image_size, _script().SHAPES
    for i, (c, r) in enumerate(zip(encoder.channels, encoder.reductions), 1):
        assert shapes[f"f{i}"][0] == f"{c} × {side // r}²"
    (c1, c2, c3), r3 = encoder.channels, encoder.reductions[-1]
    assert shapes["neck"][0] == f"{2 * c3} × {side // (2 * r3)}²"
    dims = (2 * c3, c3, c2, c1)  # omniad_lite.model.decoder: stage dims
    for i, (dim, depth) in enumerate(zip(dims, cfg.decoder_depths)):
        assert shapes[f"stage{i}"][0] == f"{dim} × {side // (2 * r3) * 2 ** i}², {depth} blocks"
