"""Tests for omniad_lite/encoder.py: channels, normalisation, freezing, weight sources and their errors."""
from __future__ import annotations

import socket

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from skimage import data as skdata

from omniad_lite.model import encoder as enc
from omniad_lite.model import weights as wts
from omniad_lite.model.encoder import FrozenEncoder, encoder_mean_std
from omniad_lite.model.weights import offline_imagenet_classifier

IMAGENET_ESPRESSO = 967
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name, channels", [
    ("resnet34", [64, 128, 256]),
    ("wide_resnet50_2", [256, 512, 1024]),
    ("tf_efficientnet_lite0", [24, 40, 112]),
])
def test_channels_and_shapes(name, channels):
    e = FrozenEncoder(name, weights=None)
    assert e.channels == channels
    assert e.reductions == [4, 8, 16]
    feats = e(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, c, 64 // r, 64 // r) for c, r in zip(channels, [4, 8, 16])]


def test_mean_std_from_pretrained_cfg():
    for name in ("resnet34", "wide_resnet50_2"):
        mean, std = encoder_mean_std(name)
        assert mean == pytest.approx(IMAGENET_MEAN) and std == pytest.approx(IMAGENET_STD)
    assert encoder_mean_std("tf_efficientnet_lite0") == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def test_frozen_after_train():
    e = FrozenEncoder("resnet34", weights=None)
    e.train()
    assert not e.training and not any(m.training for m in e.modules())
    assert not any(p.requires_grad for p in e.parameters())
    out = e(torch.randn(1, 3, 32, 32))
    assert not out[0].requires_grad


def test_offline_lite0_imagenet_matches_wheel(no_network):
    e = FrozenEncoder("tf_efficientnet_lite0", weights="imagenet")
    raw = torch.load(wts.lite0_wheel_path(), map_location="cpu", weights_only=True)
    sd = e.body.state_dict()
    assert torch.equal(sd["conv_stem.weight"], raw["_conv_stem.weight"])
    assert torch.equal(sd["blocks.2.1.conv_pwl.weight"], raw["_blocks.4._project_conv.weight"])
    assert torch.equal(sd["blocks.0.0.conv_pw.weight"], raw["_blocks.0._project_conv.weight"])


def test_offline_classifier_ranks_espresso_first(no_network):
    model = offline_imagenet_classifier("tf_efficientnet_lite0")
    cfg = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**cfg)
    x = transform(Image.fromarray(skdata.coffee())).unsqueeze(0)
    with torch.no_grad():
        probs = model(x).softmax(-1)[0]
    assert int(probs.argmax()) == IMAGENET_ESPRESSO
    assert float(probs[IMAGENET_ESPRESSO]) > 0.5


@pytest.fixture(scope="module")
def resnet34_full_state():
    torch.manual_seed(0)
    return timm.create_model("resnet34").state_dict()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_full_classifier_file(tmp_path, resnet34_full_state, suffix):
    path = tmp_path / f"resnet34{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in resnet34_full_state.items()}, str(path))
    else:
        torch.save(resnet34_full_state, path)
    e = FrozenEncoder("resnet34", weights=str(path))
    sd = e.body.state_dict()
    assert torch.equal(sd["layer3.5.conv2.weight"], resnet34_full_state["layer3.5.conv2.weight"])
    assert torch.equal(sd["bn1.running_var"], resnet34_full_state["bn1.running_var"])
    assert "fc.weight" not in sd and not any(k.startswith("layer4") for k in sd)


def test_local_wrapped_checkpoint(tmp_path, resnet34_full_state):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in resnet34_full_state.items()}, "epoch": 3}, path)
    e = FrozenEncoder("resnet34", weights=str(path))
    assert torch.equal(e.body.state_dict()["conv1.weight"], resnet34_full_state["conv1.weight"])


def test_error_unknown_encoder():
    with pytest.raises(ValueError, match=r"unknown encoder 'resnet35'.*resnet34"):
        FrozenEncoder("resnet35", weights=None)
    with pytest.raises(ValueError, match="unknown encoder"):
        encoder_mean_std("not_a_model_xyz")


def test_error_missing_file(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        FrozenEncoder("resnet34", weights=str(missing))


def test_error_wrong_suffix(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("x")
    with pytest.raises(ValueError, match=r"weights.txt.*suffix"):
        FrozenEncoder("resnet34", weights=str(path))


def test_error_mismatching_file(tmp_path, resnet34_full_state):
    resnet18 = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), resnet18)
    with pytest.raises(ValueError, match=r"resnet18.pth does not match timm 'resnet34'.*missing keys \['layer1.2"):
        FrozenEncoder("resnet34", weights=str(resnet18))

    bad = dict(resnet34_full_state)
    bad["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    bad["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(ValueError) as err:
        FrozenEncoder("resnet34", weights=str(path))
    msg = str(err.value)
    assert "bad.pth" in msg and "unexpected keys ['extra.weight']" in msg
    assert "conv1.weight: file (32, 3, 7, 7) vs model (64, 3, 7, 7)" in msg
    assert "\n" not in msg


def test_error_hub_unavailable(monkeypatch):
    real_create = timm.create_model

    def offline_create(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real_create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(enc.timm, "create_model", offline_create)
    with pytest.raises(RuntimeError, match=r"'resnet34'.*local resnet34 weights file"):
        FrozenEncoder("resnet34", weights="imagenet")


def test_error_lite0_with_resnet_weights(tmp_path, resnet34_full_state):
    path = tmp_path / "r34.pth"
    torch.save(resnet34_full_state, path)
    with pytest.raises(ValueError, match=r"r34.pth does not match timm 'tf_efficientnet_lite0'"):
        FrozenEncoder("tf_efficientnet_lite0", weights=str(path))


def test_lite0_wheel_file_as_local_path(no_network):
    a = FrozenEncoder("tf_efficientnet_lite0", weights=str(wts.lite0_wheel_path()))
    b = FrozenEncoder("tf_efficientnet_lite0", weights="imagenet")
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32))
    assert all(torch.equal(u, v) for u, v in zip(a(x), b(x)))
