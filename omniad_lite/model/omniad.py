"""Omni-AD: frozen encoder → neck → feature jitter (training) → Omni-block decoder.

Assembles the network of Omni-AD (arXiv 2503.21125, Fig. 2; released code github easyoo/Omni-AD
``model/omniad.py``, class ``OmniAD``). The decoder reconstructs the frozen encoder's three feature maps;
the reconstruction error is the anomaly signal.

- :func:`build_model` builds it from a :class:`~omniad_lite.config.ModelConfig`.
- ``model(images)`` returns ``(encoder_features, reconstructions)``; ``model.reconstruct(features)`` runs
  only the trainable part (used with cached teacher features).
- :func:`feature_jitter` is UniAD's jitter as the released code applies it: per token
  ``f + ε·(‖f‖₂ / C)·scale`` (division by C, not sqrt(C)), training only.
- ``model.preprocess`` is the input size and normalisation the model expects (saved with every run):
  datasets, ``predict`` and the ONNX export take them from there.

Names vs. the released code: ``encoder`` = ``net_t``, ``neck`` = ``Neck``, ``decoder`` = ``net_s``,
``jitter_scale`` = the hard-coded ``scale = 20`` of ``add_jitter``. The released code draws the jitter on the
CPU and moves it; we draw it on the features' device (same distribution).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ExperimentConfig, ModelConfig
from ..data.preprocess import Preprocess
from ..errors import InputError
from .decoder import Decoder
from .encoder import FrozenEncoder, encoder_mean_std
from .neck import Neck

__all__ = ["OmniAD", "build_model", "feature_jitter", "model_preprocess", "resolve_preprocess"]


def feature_jitter(features: torch.Tensor, scale: float) -> torch.Tensor:
    """Add UniAD feature jitter to every spatial token of ``(B, C, H, W)``: ``f + ε·‖f‖₂/C·scale``.

    Args:
        features: ``(B, C, H, W)`` neck output.
        scale: jitter scale (paper: 20).
    """
    channels = features.shape[1]
    token_norms = features.norm(dim=1, keepdim=True) / channels  # (B, 1, H, W)
    return features + torch.randn_like(features) * token_norms * scale


class OmniAD(nn.Module):
    """The whole network.

    Args:
        encoder: frozen :class:`~omniad_lite.encoder.FrozenEncoder`.
        neck: :class:`~omniad_lite.neck.Neck`.
        decoder: :class:`~omniad_lite.decoder.Decoder`.
        preprocess: the input size and normalisation the model expects.
        jitter_scale: feature-jitter scale during training (0 disables it).
    """

    def __init__(self, encoder: FrozenEncoder, neck: Neck, decoder: Decoder, preprocess: Preprocess,
                 jitter_scale: float = 20.0):
        super().__init__()
        self.encoder, self.neck, self.decoder = encoder, neck, decoder
        self.preprocess = preprocess
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
            images: ``(B, 3, S, S)`` prepared with :attr:`preprocess`.

        Returns:
            ``(encoder_features, reconstructions)``: two lists of three ``(B, c_i, S/r_i, S/r_i)`` tensors.
        """
        with torch.no_grad():
            features = self.encoder(images)
        return features, self.reconstruct(features)


def model_preprocess(model_cfg: ModelConfig) -> Preprocess:
    """Input size and normalisation of ``model_cfg`` (``mean``/``std`` ``None``: the encoder's pretrained ones)."""
    mean, std = model_cfg.mean, model_cfg.std
    if mean is None or std is None:
        default_mean, default_std = encoder_mean_std(model_cfg.encoder)
        mean, std = mean or default_mean, std or default_std
    return Preprocess(model_cfg.image_size, tuple(mean), tuple(std))


def resolve_preprocess(cfg: ExperimentConfig) -> ExperimentConfig:
    """A copy of ``cfg`` with ``model.mean``/``model.std`` filled in (the encoder's pretrained values).

    A run saves this resolved config, so its normalisation never depends on the installed timm.
    """
    pre = model_preprocess(cfg.model)
    return cfg.with_overrides({"model.mean": list(pre.mean), "model.std": list(pre.std)})


def build_model(model_cfg: ModelConfig) -> OmniAD:
    """Build :class:`OmniAD` from a :class:`~omniad_lite.config.ModelConfig` (weights per ``encoder_weights``)."""
    encoder = FrozenEncoder(model_cfg.encoder, model_cfg.encoder_weights, model_cfg.out_indices)
    r1, r2, r3 = encoder.reductions
    if not (r2 == 2 * r1 and r3 == 2 * r2):
        raise InputError(f"encoder {model_cfg.encoder!r} with out_indices={tuple(model_cfg.out_indices)} has "
                         f"reductions {encoder.reductions}; Omni-AD needs each scale at half the previous "
                         f"resolution, e.g. out_indices=(1, 2, 3)")
    neck = Neck(encoder.channels)
    decoder = Decoder(encoder.channels, tuple(model_cfg.decoder_depths), num_heads=model_cfg.num_heads,
                      num_query_tokens=model_cfg.num_query_tokens, num_kv_tokens=model_cfg.num_kv_tokens,
                      use_global_branch=model_cfg.use_global_branch, use_local_branch=model_cfg.use_local_branch,
                      ffn=model_cfg.ffn)
    return OmniAD(encoder, neck, decoder, model_preprocess(model_cfg), jitter_scale=model_cfg.jitter_scale)
