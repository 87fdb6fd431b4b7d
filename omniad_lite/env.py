"""The run environment: seeding, device choice, and the library versions recorded in every run."""
from __future__ import annotations

import os
import platform
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import SetupError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Call once per notebook or run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SetupError(f"device={device!r} asked for CUDA but torch sees no GPU; use device='cpu' or 'auto'")
    return dev


def versions() -> dict[str, str | None]:
    """Versions of Python, torch, timm, CUDA/cuDNN and the git commit, recorded in every run directory."""
    import timm  # lazy: timm's import takes seconds and only run directories need its version

    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                                capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "omniad_lite": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cuda": torch.version.cuda,
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": commit,
        "hostname_cpus": str(os.cpu_count()),
    }
