"""The Omni-AD network, one concern per file, building blocks first and the assembly last.

- :mod:`.encoder` — the frozen timm teacher (three feature scales); :mod:`.weights` — its weight files
- :mod:`.neck` — multi-scale fusion (from MambaAD)
- :mod:`.token_attention` — attention through learnable tokens, with the post-softmax bias and the FFN
- :mod:`.omni_block` — the Omni-block: global branch + local branch + merge
- :mod:`.decoder` — four stages of Omni-blocks
- :mod:`.omniad` — :class:`OmniAD` and :func:`build_model`
- :mod:`.loss` — :func:`reconstruction_loss`
"""
from __future__ import annotations

from .encoder import FrozenEncoder, encoder_mean_std
from .loss import reconstruction_loss
from .omniad import OmniAD, build_model, feature_jitter, model_preprocess, resolve_preprocess

__all__ = ["OmniAD", "FrozenEncoder", "build_model", "encoder_mean_std", "feature_jitter", "model_preprocess",
           "reconstruction_loss", "resolve_preprocess"]
