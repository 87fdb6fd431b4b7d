"""Turn a notebook's papermill ``parameters`` cell into a validated :class:`ExperimentConfig`.

Notebook parameters are plain values (``-p epochs 2``, a YAML file with ``-f``); this module maps them
onto config keys and lets :mod:`omniad_lite.config` do the checking, so a wrong type or an unknown preset
fails in the notebook's first cells with one clear line instead of deep inside training. Ours (the released
code, github easyoo/Omni-AD, has no notebooks).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from . import presets
from .config import ExperimentConfig

# notebook parameter → config key; ``None`` values leave the preset's value unchanged
PARAM_KEYS = {
    "data_root": "data.root",
    "classes": "data.classes",
    "image_size": "model.image_size",
    "cache_images": "data.cache_images",
    "epochs": "train.epochs",
    "iterations": "train.iterations",
    "batch_size": "train.batch_size",
    "device": "train.device",
    "precision": "train.precision",
    "cache_teacher_features": "train.cache_teacher_features",
    "seed": "train.seed",
}


def experiment_from_params(preset: str, overrides: Sequence[str] | dict[str, Any] = (), **params) -> ExperimentConfig:
    """The preset ``preset`` with the notebook's parameters and free-form overrides applied.

    Args:
        preset: a name from :func:`omniad_lite.presets.names` (unknown names raise ``ValueError``).
        overrides: extra ``"section.key=value"`` strings (or a dict) for any config key, e.g.
            ``["model.ffn=resampled"]``; applied after ``params``.
        **params: notebook parameters named as in :data:`PARAM_KEYS` (``epochs=2``, ``device="cpu"``, ...);
            ``None`` keeps the preset's value.

    Raises:
        ValueError: unknown preset, unknown parameter name, or a value of the wrong type.
    """
    if not isinstance(preset, str):
        raise ValueError(f"preset={preset!r} must be a string, one of {presets.names()}")
    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise ValueError(f"unknown notebook parameter(s) {unknown}; known: {sorted(PARAM_KEYS)}")
    if params.get("data_root") is not None:
        params["data_root"] = str(params["data_root"])
    if params.get("classes") is not None and not (
            isinstance(params["classes"], list) and all(isinstance(c, str) for c in params["classes"])):
        raise ValueError(f"classes={params['classes']!r} must be a list of class names, e.g. ['bottle', 'cable']")
    cfg = presets.get(preset).with_overrides({PARAM_KEYS[k]: v for k, v in params.items() if v is not None})
    if isinstance(overrides, dict):
        return cfg.with_overrides(overrides)
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ValueError(f"overrides={overrides!r} must be a list of 'section.key=value' strings")
    return cfg.with_overrides(list(overrides)) if overrides else cfg


def check_param(name: str, value: Any, kind: type | tuple[type, ...], *, positive: bool = False) -> Any:
    """Raise ``ValueError`` naming the parameter when ``value`` is not of ``kind`` (bools are not ints).

    Args:
        name: the parameter's name, used in the message.
        value: its value.
        kind: accepted type(s).
        positive: also require ``value > 0``.

    Returns:
        ``value`` unchanged.
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok or (positive and not value > 0):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"parameter {name}={value!r} must be {'a positive ' if positive else ''}{names}")
    return value


def output_path(output_dir: str | Path) -> Path:
    """``output_dir`` as a created ``Path`` (raises ``ValueError`` for a non-string)."""
    check_param("output_dir", output_dir, (str, Path))
    path = Path(output_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
