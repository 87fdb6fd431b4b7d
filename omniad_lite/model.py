"""Omni-AD: frozen encoder → neck → feature jitter (training) → Omni-block decoder.

Assembles the network of Omni-AD (arXiv 2503.21125, Fig. 2; released code github easyoo/Omni-AD
``model/omniad.py``, class ``OmniAD``). The decoder reconstructs the frozen encoder's three feature maps;
the reconstruction error is the anomaly signal.

- :func:`build_model` builds it from a :class:`~omniad_lite.config.ModelConfig`.
- ``model(images)`` returns ``(encoder_features, reconstructions)``; ``model.reconstruct(features)`` runs
  only the trainable part (used with cached teacher features).
- :func:`feature_jitter` is UniAD's jitter as the released code applies it: per token
  ``f + ε·(‖f‖₂ / C)·scale`` (division by C, not sqrt(C)), training only.
- :func:`reconstruction_loss`: MSE per scale, summed over the three scales.

Names vs. the released code: ``encoder`` = ``net_t``, ``neck`` = ``Neck``, ``decoder`` = ``net_s``,
``jitter_scale`` = the hard-coded ``scale = 20`` of ``add_jitter``. The released code draws the jitter on the
CPU and moves it; we draw it on the features' device (same distribution).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .decoder import Decoder
from .encoder import FrozenEncoder, encoder_mean_std
from .neck import Neck

__all__ = ["OmniAD", "build_model", "encoder_mean_std", "feature_jitter", "reconstruction_loss"]


def feature_jitter(features: torch.Tensor, scale: float) -> torch.Tensor:
    """Add UniAD feature jitter to every spatial token of ``(B, C, H, W)``: ``f + ε·‖f‖₂/C·scale``.

    Args:
        features: ``(B, C, H, W)`` neck output.
        scale: jitter scale (paper: 20).
    """
    channels = features.shape[1]
    token_norms = features.norm(dim=1, keepdim=True) / channels  # (B, 1, H, W)
    return features + torch.randn_like(features) * token_norms * scale


def reconstruction_loss(encoder_features: list[torch.Tensor], reconstructions: list[torch.Tensor]) -> torch.Tensor:
    """Sum over the three scales of the mean squared error between features and reconstructions."""
    if len(encoder_features) != len(reconstructions):
        raise ValueError(f"got {len(encoder_features)} encoder maps but {len(reconstructions)} reconstructions")
    return sum(F.mse_loss(rec, feat) for feat, rec in zip(encoder_features, reconstructions))


class OmniAD(nn.Module):
    """The whole network.

    Args:
        encoder: frozen :class:`~omniad_lite.encoder.FrozenEncoder`.
        neck: :class:`~omniad_lite.neck.Neck`.
        decoder: :class:`~omniad_lite.decoder.Decoder`.
        jitter_scale: feature-jitter scale during training (0 disables it).
    """

    def __init__(self, encoder: FrozenEncoder, neck: Neck, decoder: Decoder, jitter_scale: float = 20.0):
        super().__init__()
        self.encoder, self.neck, self.decoder = encoder, neck, decoder
        self.jitter_scale = jitter_scale

    def reconstruct(self, encoder_features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Neck → jitter (training, ``jitter_scale > 0``) → decoder.

        Args:
            encoder_features: three ``(B, c_i, H_i, W_i)`` maps.

        Returns:
            Three reconstructions with the same shapes.
        """
        fused = self.neck(encoder_features)  # (B, 2·c3, H3/2, W3/2)
        if self.training and self.jitter_scale > 0:
            fused = feature_jitter(fused, self.jitter_scale)
        return self.decoder(fused)

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Args:
            images: ``(B, 3, S, S)`` normalised with ``encoder.mean``/``encoder.std``.

        Returns:
            ``(encoder_features, reconstructions)``: two lists of three ``(B, c_i, S/r_i, S/r_i)`` tensors.
        """
        with torch.no_grad():
            features = self.encoder(images)
        return features, self.reconstruct(features)


def build_model(model_cfg: ModelConfig) -> OmniAD:
    """Build :class:`OmniAD` from a :class:`~omniad_lite.config.ModelConfig` (weights per ``encoder_weights``)."""
    encoder = FrozenEncoder(model_cfg.encoder, model_cfg.encoder_weights, model_cfg.out_indices)
    r1, r2, r3 = encoder.reductions
    if not (r2 == 2 * r1 and r3 == 2 * r2):
        raise ValueError(f"encoder {model_cfg.encoder!r} with out_indices={tuple(model_cfg.out_indices)} has "
                         f"reductions {encoder.reductions}; Omni-AD needs each scale at half the previous "
                         f"resolution, e.g. out_indices=(1, 2, 3)")
    neck = Neck(encoder.channels)
    decoder = Decoder(encoder.channels, tuple(model_cfg.decoder_depths), num_heads=model_cfg.num_heads,
                      num_query_tokens=model_cfg.num_query_tokens, num_kv_tokens=model_cfg.num_kv_tokens,
                      use_global_branch=model_cfg.use_global_branch, use_local_branch=model_cfg.use_local_branch,
                      ffn=model_cfg.ffn)
    return OmniAD(encoder, neck, decoder, jitter_scale=model_cfg.jitter_scale)
