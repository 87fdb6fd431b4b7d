"""Tests for omniad_lite/model.py: paper sizes, determinism, FFN modes, gradients, jitter, loss."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from omniad_lite import presets
from omniad_lite.config import ModelConfig
from omniad_lite.model import OmniAD, build_model, encoder_mean_std, feature_jitter, reconstruction_loss

# docs/method.md, measured on the released code
PAPER_PARAMS = {"encoder": 8_170_304, "neck": 1_458_304, "decoder": 26_529_600}
# A tiny resnet34-teacher model for fast checks (random encoder, no hub).
TINY = dict(encoder_weights=None, decoder_depths=(1, 1, 1, 1), num_query_tokens=4, num_kv_tokens=4)


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(encoder_weights=None))


def test_paper_sizes_and_shapes(paper_model):
    assert isinstance(paper_model, OmniAD)
    assert {part: count(getattr(paper_model, part)) for part in PAPER_PARAMS} == PAPER_PARAMS
    paper_model.eval()
    with torch.no_grad():
        feats, recs = paper_model(torch.randn(1, 3, 256, 256))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 64, 64), (1, 128, 32, 32), (1, 256, 16, 16)]
    assert [r.shape for r in recs] == [f.shape for f in feats]


def test_learned_is_deterministic_and_saved():
    model = build_model(ModelConfig(**TINY)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x)[1], model(x)[1]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    keys = model.state_dict()
    assert "decoder.stages.0.blocks.0.global_branch.ffn_a.fc1.weight" in keys
    assert "decoder.stages.3.blocks.0.global_branch.ffn_b.fc2.bias" in keys


def test_resampled_eval_differs_between_calls():
    """The released behaviour: the FFN is redrawn at each call, so eval is not repeatable."""
    model = build_model(ModelConfig(**TINY, ffn="resampled")).eval()
    assert not any("ffn" in k for k in model.state_dict())  # never trained, never saved
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x)[1], model(x)[1]
    assert not torch.allclose(a[0], b[0])


def test_forward_equals_encoder_plus_reconstruct():
    model = build_model(ModelConfig(**TINY)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats, recs = model(x)
        recs2 = model.reconstruct(model.encoder(x))
    assert all(torch.equal(u, v) for u, v in zip(recs, recs2))


def test_gradients_reach_neck_and_decoder_not_encoder():
    model = build_model(ModelConfig(**TINY)).train()
    assert not model.encoder.training and model.neck.training and model.decoder.training
    feats, recs = model(torch.randn(2, 3, 64, 64))
    reconstruction_loss(feats, recs).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(not p.requires_grad for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.neck.parameters())
    assert model.decoder.stages[3].blocks[0].merge_out.weight.grad.abs().sum() > 0
    assert model.decoder.stages[0].blocks[0].global_branch.attn_a.q.weight.grad is not None


def test_jitter_only_in_training():
    model = build_model(ModelConfig(**TINY))
    feats = model.encoder(torch.randn(2, 3, 64, 64))
    model.train()
    with torch.no_grad():
        a, b = model.reconstruct(feats), model.reconstruct(feats)
    assert not torch.allclose(a[0], b[0])  # jitter is random; BatchNorm batch stats are deterministic
    model.jitter_scale = 0.0
    with torch.no_grad():
        a, b = model.reconstruct(feats), model.reconstruct(feats)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_feature_jitter_scale_divides_by_channels():
    torch.manual_seed(0)
    channels = 64
    f = torch.randn(4, channels, 16, 16)
    scale = 20.0
    noise = feature_jitter(f, scale) - f
    expected_std = f.norm(dim=1, keepdim=True) / channels * scale  # ‖f‖/C·20, not ‖f‖/sqrt(C)
    standardised = noise / expected_std
    assert standardised.std().item() == pytest.approx(1.0, rel=0.02)
    assert standardised.mean().item() == pytest.approx(0.0, abs=0.02)


def test_reconstruction_loss_is_sum_of_mean_squares():
    feats = [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4), torch.randn(2, 8, 2, 2)]
    recs = [torch.randn_like(f) for f in feats]
    want = sum(((f - r) ** 2).mean() for f, r in zip(feats, recs))
    torch.testing.assert_close(reconstruction_loss(feats, recs), want)
    assert reconstruction_loss(feats, feats).item() == 0.0
    with pytest.raises(ValueError):
        reconstruction_loss(feats, recs[:2])


@pytest.mark.parametrize("name, channels", [("tf_efficientnet_lite0", [24, 40, 112]),
                                            ("wide_resnet50_2", [256, 512, 1024])])
def test_other_encoders(name, channels):
    # the local branch alone keeps the 2048-channel wide_resnet50_2 decoder small enough to build fast
    cfg = ModelConfig(encoder=name, encoder_weights=None, decoder_depths=(1, 1, 1, 1),
                      use_global_branch=name != "wide_resnet50_2", num_query_tokens=4, num_kv_tokens=4)
    model = build_model(cfg).eval()
    assert model.encoder.channels == channels
    assert model.decoder.dims == (2 * channels[2], channels[2], channels[1], channels[0])
    with torch.no_grad():
        feats, recs = model(torch.randn(1, 3, 64, 64))
    assert [r.shape for r in recs] == [f.shape for f in feats]
    assert model.preprocess.mean == encoder_mean_std(name)[0]  # the encoder's normalisation by default


def test_demo_preset_builds_offline():
    cfg = presets.get("demo").model
    model = build_model(cfg).eval()
    assert model.preprocess.mean == (0.5, 0.5, 0.5) and model.preprocess.image_size == 128
    with torch.no_grad():
        feats, recs = model(torch.randn(1, 3, 128, 128))
    assert F.mse_loss(recs[0], feats[0]).isfinite()


def test_bad_out_indices():
    cfg = dataclasses.replace(ModelConfig(**TINY), out_indices=(1, 2, 4))
    with pytest.raises(ValueError, match="out_indices"):
        build_model(cfg)
