"""The methods a run can use, in one place: the config's ``method`` → how to fit it.

======  =====================================================  ==============================
method  fit (writes a run directory)                            settings
======  =====================================================  ==============================
omniad  :func:`omniad_lite.training.loop.train` (Omni-AD)      the config itself
knn     :func:`omniad_lite.training.knn_fit.train_knn`          ``knn.<key>=<value>`` overrides
                                                                (:class:`~omniad_lite.baselines.knn.KnnConfig`)
======  =====================================================  ==============================

Every method's run directory holds the same files (:mod:`omniad_lite.run`), so ``load_run``, ``evaluate``,
``predict``, ``calibrate`` and ``export`` work on a run of any method; loading is mapped in
:data:`omniad_lite.evaluation.run_loading.LOADERS`. :func:`train` is ``omniad_lite.train``; the CLI's
``--method``, sweeps and the notebooks call it. Adding a method: a ``METHODS`` name in
:mod:`omniad_lite.config`, a fit function here, a loader there (``tests/test_methods.py`` checks the three
agree).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .baselines.knn import KnnConfig
from .config import ExperimentConfig, parse_overrides
from .errors import ConfigError
from .results import TrainResult
from .training.knn_fit import train_knn
from .training.loop import train as train_omniad


@dataclass(frozen=True)
class Method:
    """One method: its name, its fit function and the type of its own settings (``None``: none)."""

    name: str
    fit: Callable[..., TrainResult]
    settings: type | None = None
    description: str = ""


def _fit_omniad(cfg: ExperimentConfig, out_dir, settings: None, *, resume, overwrite, progress, **kwargs):
    return train_omniad(cfg, out_dir, resume=resume, overwrite=overwrite, progress=progress, **kwargs)


def _fit_knn(cfg: ExperimentConfig, out_dir, settings: KnnConfig | None, *, resume, overwrite, progress, **kwargs):
    if resume is True:
        raise ConfigError("resume does not apply to method=knn (it has no training steps); use overwrite")
    if kwargs:
        raise ConfigError(f"method=knn takes no {sorted(kwargs)}")
    return train_knn(cfg, out_dir, settings, overwrite=overwrite, progress=progress)


METHODS: dict[str, Method] = {
    "omniad": Method("omniad", _fit_omniad, None, "Omni-AD: reconstruct the frozen teacher's features"),
    "knn": Method("knn", _fit_knn, KnnConfig, "training-free PatchCore-style kNN on the same teacher"),
}


def get_method(name: str) -> Method:
    """The :class:`Method` called ``name``; an unknown name raises listing the valid ones."""
    if name not in METHODS:
        raise ConfigError(f"method {name!r} is not one of {list(METHODS)}")
    return METHODS[name]


def split_settings(overrides: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Separate a method's own settings (``knn.coreset_ratio=0.1``) from config overrides.

    Returns:
        ``(config overrides, {method: {key: value}})``; values are parsed as JSON when possible.
    """
    rest: list[str] = []
    settings: dict[str, dict[str, Any]] = {}
    for item in overrides:
        prefix, dot, _ = item.partition("=")[0].strip().partition(".")
        if dot and prefix in METHODS and METHODS[prefix].settings is not None:
            (key, value), = parse_overrides([item.split(".", 1)[1]]).items()
            settings.setdefault(prefix, {})[key] = value
        else:
            rest.append(item)
    return rest, settings


def method_settings(cfg: ExperimentConfig, settings: dict[str, dict[str, Any]] | Any = None):
    """The settings object of ``cfg.method`` (e.g. a :class:`KnnConfig`) from :func:`split_settings`' dict.

    Raises:
        ConfigError: settings given for another method than the config's.
    """
    method = get_method(cfg.method)
    if settings is None or (method.settings is not None and isinstance(settings, method.settings)):
        return settings if settings is not None else (method.settings() if method.settings else None)
    other = sorted(set(settings) - {cfg.method})
    if other:
        raise ConfigError(f"settings for method(s) {other} given with method={cfg.method!r}; add method={other[0]}")
    return method.settings().with_overrides(settings.get(cfg.method, {})) if method.settings else None


def train(cfg: ExperimentConfig, out_dir: str | Path, *, settings=None, resume: bool | str = False,
          overwrite: bool = False, progress: bool = True, **kwargs) -> TrainResult:
    """Fit ``cfg.method`` on ``cfg``'s data and write a run directory (``omniad_lite.train``).

    Args:
        cfg: the experiment; ``cfg.method`` picks the method (default ``"omniad"``).
        out_dir: the run directory to write.
        settings: the method's own settings: a :class:`KnnConfig` or ``{"knn": {"coreset_ratio": 0.1}}``
            (``None``: the defaults).
        resume: Omni-AD: continue from the last checkpoint (``"auto"``: when there is one).
        overwrite: replace a run already in ``out_dir``.
        progress: progress bars.
        **kwargs: passed to the method's fit function (Omni-AD: ``max_steps``, ``callback``).

    Returns:
        A :class:`~omniad_lite.results.TrainResult`.
    """
    method = get_method(cfg.method)
    return method.fit(cfg, out_dir, method_settings(cfg, settings), resume=resume, overwrite=overwrite,
                      progress=progress, **kwargs)

