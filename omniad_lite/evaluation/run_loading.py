"""Load a saved run of any method: its config, its model in eval mode and its directory.

The run's ``config.json`` names the method (``omniad`` or ``knn``, :data:`omniad_lite.config.METHODS`);
:data:`LOADERS` maps each to the function that rebuilds its model from ``model.safetensors`` (checked against
its checkpoint's recorded hash by :meth:`~omniad_lite.run.RunDir.load_state_dict`). No network and no dataset
are needed: the saved state holds the teacher's weights too.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..baselines.knn import load_knn
from ..config import ExperimentConfig
from ..errors import RunStateError
from ..files import read_json
from ..model import build_model
from ..run import RunDir


@dataclass
class LoadedRun:
    """A trained run, ready to use: its config, its model (eval mode) and its directory."""

    config: ExperimentConfig
    model: Any
    run_dir: RunDir

    @property
    def preprocess(self):
        """The model's input size and normalisation."""
        return self.model.preprocess


def _load_omniad(cfg: ExperimentConfig, run: RunDir, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = build_model(replace(cfg.model, encoder_weights=None))  # the state holds the encoder's weights
    model.load_state_dict(state, strict=True)
    return model


def _load_knn(cfg: ExperimentConfig, run: RunDir, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    if not (run / RunDir.KNN).is_file():
        raise RunStateError(f"{run / RunDir.KNN} is missing: the kNN run in {run} is incomplete; fit it again "
                            f"(omniad-lite train --method knn --overwrite)")
    return load_knn(cfg.model, read_json(run / RunDir.KNN, "kNN settings"), state)


LOADERS: dict[str, Callable[[ExperimentConfig, RunDir, dict], torch.nn.Module]] = {
    "omniad": _load_omniad, "knn": _load_knn}


def as_run_dir(run_dir: str | os.PathLike | RunDir) -> RunDir:
    return run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)


def load_run(run_dir: str | os.PathLike | RunDir, device="cpu") -> LoadedRun:
    """Load a run directory's config and model (eval mode) on ``device``.

    Args:
        run_dir: a directory written by :func:`omniad_lite.train` (any method), or its :class:`RunDir`.
        device: ``"cpu"``, ``"cuda"``, ... (a ``torch.device`` too).
    """
    run = as_run_dir(run_dir)
    cfg = run.load_config()
    model = LOADERS[cfg.method](cfg, run, run.load_state_dict())
    return LoadedRun(cfg, model.to(device).eval(), run)
