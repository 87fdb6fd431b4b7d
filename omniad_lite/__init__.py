"""omniad_lite: learn, run and reproduce Omni-AD (arXiv 2503.21125, ICME 2025).

Public API (heavy parts are imported on first use, so ``import omniad_lite`` is fast and torch-free):

- configs and presets: :class:`ExperimentConfig`, :mod:`omniad_lite.presets`
- model: :func:`build_model` (frozen timm encoder → neck → Omni-block decoder), :mod:`omniad_lite.model`
- data: :mod:`omniad_lite.data` (MVTec-AD, VisA, Real-IAD, ADer meta.json; the offline demo dataset)
- evaluation: :func:`evaluate` → :class:`EvalResult`, :func:`predict` → :class:`Prediction` objects (with
  decisions from a run's ``thresholds.json``; :func:`calibrate` re-chooses them)
- training: :func:`train` → :class:`TrainResult`; :func:`load_run` → :class:`LoadedRun`; :class:`RunDir`
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import presets  # noqa: E402
from .config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig  # noqa: E402

_LAZY = {
    "build_model": "model", "evaluate": "evaluation.evaluate", "predict": "evaluation.predict",
    "calibrate": "evaluation.calibration", "train": "training", "load_run": "run", "RunDir": "run", "LoadedRun": "run",
    "EvalResult": "results", "Prediction": "results", "TrainResult": "results", "seed_everything": "env",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'omniad_lite' has no attribute {name!r}")


__all__ = ["DataConfig", "ExperimentConfig", "ModelConfig", "TrainConfig", "presets", *_LAZY]
