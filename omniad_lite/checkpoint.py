"""Run directories: save and load a trained model with its config.

A run directory holds ``config.json`` (the resolved :class:`ExperimentConfig` plus library versions) and
``model.safetensors`` (the whole model's ``state_dict``, frozen encoder included, so a run is
self-contained and loads with no network). The training engine adds its resumable state next to them.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .config import ExperimentConfig

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"


def atomic_write(path: str | Path, write_fn) -> None:
    """Write ``path`` through ``write_fn(tmp_path)`` into a temporary file, then rename it into place.

    A crash mid-write leaves the previous file intact (rename is atomic on POSIX).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_config(run_dir: str | Path, cfg: ExperimentConfig, versions: dict | None = None) -> None:
    """Write ``config.json``; ``versions`` (torch/timm/CUDA/git) is stored beside the config keys."""
    d = cfg.to_dict()
    if versions is not None:
        d["versions"] = versions
    atomic_write(Path(run_dir) / CONFIG_FILE, lambda tmp: Path(tmp).write_text(json.dumps(d, indent=2) + "\n"))


def save_model(run_dir: str | Path, model: torch.nn.Module, metadata: dict[str, str] | None = None) -> None:
    """Write the model's weights to ``model.safetensors`` atomically.

    Args:
        run_dir: the run directory.
        model: the model (unwrapped: not the DDP or compiled wrapper).
        metadata: string key/values stored in the safetensors header (the trainer stores the step).
    """
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(Path(run_dir) / MODEL_FILE, lambda tmp: save_file(state, tmp, metadata=metadata))


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """Load a run directory's config and model (eval mode) on ``device``.

    Returns:
        ``(ExperimentConfig, OmniAD)``.
    """
    from .model import build_model

    run_dir = Path(run_dir)
    cfg_path, weights = run_dir / CONFIG_FILE, run_dir / MODEL_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: {CONFIG_FILE} is missing "
                                f"(train one with `omniad-lite train --out {run_dir}`)")
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: the run in {run_dir} has not saved a model yet")
    cfg = ExperimentConfig.load(cfg_path)
    # The saved state contains the encoder too, so no weights source is needed to rebuild it.
    model_cfg = type(cfg.model)(**{**cfg.model.__dict__, "encoder_weights": None})
    model = build_model(model_cfg)
    model.load_state_dict(load_file(str(weights)), strict=True)
    return cfg, model.to(device).eval()
