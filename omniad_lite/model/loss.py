"""The training loss: mean squared error between each teacher feature map and its reconstruction.

Omni-AD (arXiv 2503.21125, Sec. 3.3; released code github easyoo/Omni-AD, ADer's ``L2Loss`` on the three
scales): MSE (mean over all elements) per scale, summed over the three scales.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError


def reconstruction_loss(encoder_features: list[torch.Tensor], reconstructions: list[torch.Tensor]) -> torch.Tensor:
    """Sum over the three scales of the mean squared error between features and reconstructions."""
    if len(encoder_features) != len(reconstructions):
        raise InputError(f"got {len(encoder_features)} encoder maps but {len(reconstructions)} reconstructions")
    return sum(F.mse_loss(rec, feat) for feat, rec in zip(encoder_features, reconstructions))
