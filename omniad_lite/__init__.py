"""omniad_lite: learn, run and reproduce Omni-AD (arXiv 2503.21125, ICME 2025).

Public API (heavy parts are imported on first use, so ``import omniad_lite`` is fast and torch-free):

- configs and presets: :class:`ExperimentConfig`, :mod:`omniad_lite.presets`
- model: :func:`build_model` (frozen timm encoder → neck → Omni-block decoder), :mod:`omniad_lite.model`
- data: :mod:`omniad_lite.data` (MVTec-AD, VisA, Real-IAD, ADer meta.json; the offline demo dataset)
- evaluation: :func:`evaluate` → :class:`EvalResult`, :func:`predict` → :class:`Prediction` objects (with
  decisions from a run's ``thresholds.json``; :func:`calibrate` re-chooses them)
- training: :func:`train` (any method of :mod:`omniad_lite.methods`) → :class:`TrainResult`;
  :func:`load_run` → :class:`LoadedRun`; :class:`RunDir`
- results of notebooks and sweeps: :func:`collect` (``results.json`` files → one pandas DataFrame)
- errors and warnings: :class:`OmniADError`, :class:`OmniADWarning` (:mod:`omniad_lite.errors`)
"""
from __future__ import annotations

from importlib import import_module

from . import presets
from .config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from .errors import OmniADError, OmniADWarning

__version__ = "0.1.0"

_LAZY = {
    "build_model": "model", "evaluate": "evaluation.evaluator", "predict": "evaluation.prediction",
    "calibrate": "evaluation.calibration", "train": "methods", "load_run": "evaluation.run_loading",
    "LoadedRun": "evaluation.run_loading", "RunDir": "run", "collect": "notebook_results",
    "EvalResult": "results", "Prediction": "results", "TrainResult": "results", "seed_everything": "env",
}


def __getattr__(name: str):
    if name in _LAZY:  # lazy: `import omniad_lite` stays torch-free (torch takes seconds to import)
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups find the function, never a submodule of the same name
        return value
    raise AttributeError(f"module 'omniad_lite' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["DataConfig", "ExperimentConfig", "ModelConfig", "TrainConfig", "OmniADError", "OmniADWarning", "presets",
           *_LAZY]
