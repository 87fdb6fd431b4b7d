"""Tests for omniad_lite/neck.py: released size, shapes for any encoder channels, init."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omniad_lite.model.neck import Neck

PAPER_NECK_PARAMS = 1_458_304  # docs/method.md, measured on the released code (resnet34 channels)


def test_paper_param_count():
    assert sum(p.numel() for p in Neck([64, 128, 256]).parameters()) == PAPER_NECK_PARAMS


@pytest.mark.parametrize("channels", [[64, 128, 256], [24, 40, 112], [8, 16, 32]])
def test_output_shape(channels):
    c1, c2, c3 = channels
    neck = Neck(channels).eval()
    feats = [torch.randn(2, c1, 32, 32), torch.randn(2, c2, 16, 16), torch.randn(2, c3, 8, 8)]
    out = neck(feats)
    assert neck.out_channels == 2 * c3
    assert out.shape == (2, 2 * c3, 4, 4)


def test_wide_resnet_channels():
    neck = Neck([256, 512, 1024])
    assert neck.out_channels == 2048
    assert neck.blocks[0].conv3.out_channels == 2048


def test_init_kaiming_fan_out_and_bn():
    torch.manual_seed(0)
    neck = Neck([64, 128, 256])
    w = neck.down2[0].weight  # (256, 128, 3, 3): fan_out = 256 * 9
    assert w.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    for m in neck.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    assert neck.down1[0].bias is None and neck.lateral2[0].bias is not None


def test_odd_channels_error():
    with pytest.raises(ValueError, match="even"):
        Neck([8, 16, 33])
