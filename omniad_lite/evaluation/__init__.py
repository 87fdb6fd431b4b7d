"""Scoring, metrics and evaluation.

- :mod:`.scoring` — anomaly maps and image scores (torch)
- :mod:`.curves` — exact AUROC / AP / F1-max / AU-PRO from sorted scores (NumPy)
- :mod:`.metrics` — :func:`compute_metrics` under the ``kit`` or ``released`` protocol (NumPy)
- :mod:`.stream` — :class:`MetricAccumulator`, bounded memory (NumPy)
- :mod:`.tables` — per-class tables, JSON/CSV export (pandas)
- :mod:`.inference` — the one inference path (torch)
- :mod:`.evaluate` — :func:`evaluate` → :class:`~omniad_lite.results.EvalResult`
- :mod:`.predict` — :func:`predict` → :class:`~omniad_lite.results.Prediction` objects (decisions included);
  :mod:`.predict_files` — overlays + ``scores.csv`` for the CLI
- :mod:`.thresholds` — decision thresholds (FPR on held-out normals, F1), the normalised scale (NumPy);
  :mod:`.calibration` — :func:`calibrate`: score the held-out images, write ``thresholds.json``
- :mod:`.bootstrap` — :func:`bootstrap_ci`: confidence intervals by a bootstrap over test images
- :mod:`.reference_results` — published numbers of the peer methods

Importing this package (or its NumPy modules) does not import torch.
"""
from __future__ import annotations

_LAZY = {
    "compute_metrics": "metrics", "PROTOCOLS": "metrics", "METRIC_NAMES": "metrics",
    "MetricAccumulator": "stream", "metrics_table": "tables", "save_table": "tables",
    "anomaly_map": "scoring", "image_scores": "scoring", "evaluate": "evaluate", "evaluate_config": "evaluate",
    "predict": "predict", "calibrate": "calibration", "Thresholds": "thresholds", "bootstrap_ci": "bootstrap",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
