"""Metrics, evaluation, predictions and decision thresholds.

- :mod:`.curve_metrics` — exact AUROC / AP / F1-max / AU-PRO from sorted scores (NumPy)
- :mod:`.metrics` — :func:`compute_metrics` under the ``kit`` or ``released`` protocol (NumPy)
- :mod:`.stream` — :class:`MetricAccumulator`, bounded memory (NumPy)
- :mod:`.metric_tables` — per-class tables, JSON/CSV export (pandas)
- :mod:`.inference` — the one inference path (torch)
- :mod:`.run_loading` — :func:`load_run` → :class:`LoadedRun` (a run of any method)
- :mod:`.evaluator` — :func:`evaluate` (a model or a run directory) → :class:`~omniad_lite.results.EvalResult`
- :mod:`.prediction` — :func:`predict` → :class:`~omniad_lite.results.Prediction` objects (decisions included)
- :mod:`.thresholds` — decision thresholds (FPR on held-out normals, F1), the normalised scale (NumPy);
  :mod:`.calibration` — :func:`calibrate`: score the held-out images, write ``thresholds.json``
- :mod:`.bootstrap` — :func:`bootstrap_ci`: confidence intervals by a bootstrap over test images
- :mod:`.released` — the released protocol's formulas; :mod:`.reference_results` — the peers' published numbers

Importing this package (or its NumPy modules) does not import torch: the names below load their module on
first use, and no name is also a submodule's name.
"""
from __future__ import annotations

from importlib import import_module

_LAZY = {
    "compute_metrics": "metrics", "PROTOCOLS": "metrics", "METRIC_NAMES": "metrics",
    "MetricAccumulator": "stream", "metrics_table": "metric_tables", "save_table": "metric_tables",
    "evaluate": "evaluator", "predict": "prediction", "iter_predictions": "prediction",
    "calibrate": "calibration", "load_thresholds": "calibration", "Thresholds": "thresholds",
    "load_run": "run_loading", "LoadedRun": "run_loading",
    "bootstrap_ci": "bootstrap",
}


def __getattr__(name: str):
    if name in _LAZY:  # lazy: keeps `import omniad_lite.evaluation` free of torch (a measured 1.5 s start-up)
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups find the function, never a submodule of the same name
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = sorted(_LAZY)
