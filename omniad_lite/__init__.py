"""omniad_lite: learn, run and reproduce Omni-AD (arXiv 2503.21125, ICME 2025).

Public API (each lives in its own module):

- configs and presets: :class:`ExperimentConfig`, :mod:`omniad_lite.presets`
- model: :func:`build_model` (frozen timm encoder → neck → Omni-block decoder)
- data: :mod:`omniad_lite.data` (MVTec-AD, VisA, Real-IAD, ADer meta.json; the offline demo dataset)
- scoring and metrics: :mod:`omniad_lite.scoring`, :mod:`omniad_lite.metrics`
- evaluation and inference: :func:`evaluate`, :func:`predict`
- training: :func:`train`, :func:`load_run`
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import presets  # noqa: E402
from .config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig  # noqa: E402
from .utils import seed_everything  # noqa: E402


def __getattr__(name: str):
    # Heavy parts are imported lazily so `import omniad_lite` stays fast and a missing optional piece
    # never breaks the import of the rest.
    if name == "build_model":
        from .model import build_model
        return build_model
    if name in ("evaluate", "predict"):
        from . import evaluation
        return getattr(evaluation, name)
    if name in ("train", "load_run"):
        from . import training
        return getattr(training, name)
    raise AttributeError(f"module 'omniad_lite' has no attribute {name!r}")


__all__ = ["DataConfig", "ExperimentConfig", "ModelConfig", "TrainConfig", "presets", "seed_everything",
           "build_model", "evaluate", "predict", "train", "load_run"]
