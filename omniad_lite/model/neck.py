"""The neck: fuse the encoder's three scales into one low-resolution map (from MambaAD).

Reimplements the multi-scale fusion Omni-AD takes from MambaAD (Omni-AD paper Sec. 3.1; released code
github easyoo/Omni-AD ``model/omniad.py``, class ``MFF_OCE``, which follows ADer's ``model/mambaad.py``):

    a = CBR3x3/2(f1) + CBR1x1(f2)          c1 -> c2 at H/8
    b = CBR3x3/2(a)  + CBR1x1(f3)          c2 -> c3 at H/16
    b = CBR1x1(b)
    out = 3 x timm Bottleneck(b)           c3 -> 2*c3 at H/32 (first block: stride 2 + 1x1 downsample)

CBR = conv → BatchNorm → ReLU. Generalised to any encoder channels ``(c1, c2, c3)``. As in the released
code the 3x3 convs have no bias while the three plain 1x1 fusion convs keep PyTorch's default bias (this is
what makes the released size 1,458,304 parameters for resnet34); the Bottleneck convs have no bias.

Names vs. the released code: ``down1``/``down2`` = ``conv1``/``conv2`` (+``bn1``/``bn2``), ``lateral2`` =
``conv21``, ``lateral3`` = ``conv31``, ``fuse`` = ``convf``, ``blocks`` = ``bn_layer``.
"""
from __future__ import annotations

import torch
from timm.models.resnet import Bottleneck
from torch import nn

from ..errors import InputError

NUM_BOTTLENECKS = 3  # MambaAD / Omni-AD: 3 Bottleneck blocks
BOTTLENECK_EXPANSION = 4  # timm Bottleneck.expansion


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, bias: bool = False) -> nn.Sequential:
    """Conv(k, stride, pad k//2) → BatchNorm → ReLU."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=bias),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class Neck(nn.Module):
    """Multi-scale feature fusion followed by 3 Bottlenecks.

    Args:
        channels: encoder channels ``(c1, c2, c3)``.

    Attributes:
        out_channels: ``2 * c3`` (512 for resnet34).
    """

    def __init__(self, channels: list[int] | tuple[int, int, int]):
        super().__init__()
        c1, c2, c3 = channels
        if c3 % 2:
            raise InputError(f"Neck needs an even last encoder channel count, got channels={list(channels)}")
        self.down1 = conv_bn_relu(c1, c2, 3, stride=2)
        self.lateral2 = conv_bn_relu(c2, c2, 1, bias=True)
        self.down2 = conv_bn_relu(c2, c3, 3, stride=2)
        self.lateral3 = conv_bn_relu(c3, c3, 1, bias=True)
        self.fuse = conv_bn_relu(c3, c3, 1, bias=True)
        planes = c3 // 2
        self.out_channels = planes * BOTTLENECK_EXPANSION
        downsample = nn.Sequential(nn.Conv2d(c3, self.out_channels, 1, stride=2, bias=False),
                                   nn.BatchNorm2d(self.out_channels))
        blocks = [Bottleneck(c3, planes, stride=2, downsample=downsample)]
        blocks += [Bottleneck(self.out_channels, planes) for _ in range(NUM_BOTTLENECKS - 1)]
        self.blocks = nn.Sequential(*blocks)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_out, relu) convs, BatchNorm weight 1 / bias 0 (docs/method.md; MambaAD's init).

        The released code leaves the 1x1 fusion convs' biases at PyTorch's default; we zero them. A bias
        right before BatchNorm is cancelled by the normalisation, so this changes no output.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Args:
            features: encoder maps ``[(B, c1, H, W), (B, c2, H/2, W/2), (B, c3, H/4, W/4)]``.

        Returns:
            ``(B, 2*c3, H/8, W/8)``.
        """
        f1, f2, f3 = features
        a = self.down1(f1) + self.lateral2(f2)  # (B, c2, H/2, W/2)
        b = self.down2(a) + self.lateral3(f3)  # (B, c3, H/4, W/4)
        b = self.fuse(b)  # (B, c3, H/4, W/4)
        return self.blocks(b)  # (B, 2*c3, H/8, W/8)
