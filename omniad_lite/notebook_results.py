"""Every notebook's ``results.json`` in one schema, and :func:`collect` to read many of them into one table.

A researcher who runs a notebook twenty times with papermill (``-p preset paper-mvtec -p epochs 200`` …)
gets twenty ``results.json`` files; ``omniad_lite.collect("runs/**/results.json")`` turns them into one
pandas DataFrame. Schema (:data:`SCHEMA_VERSION` 1; ``null`` where a notebook has nothing to say):

===============  ============================================================================================
key              value
===============  ============================================================================================
``schema``       :data:`SCHEMA_VERSION`
``notebook``     the notebook's name, e.g. ``"00_quickstart"``
``parameters``   the notebook's parameters as run (papermill's ``-p`` values included)
``config``       the run's :class:`~omniad_lite.config.ExperimentConfig` as a dict
``run_dir``      the run directory the notebook trained or used
``metrics``      ``{"protocol", "mean": {metric: percent}, "per_class": {class: {metric: percent}}}``
``times``        seconds, e.g. ``{"train_time_s": 41.2}``
``versions``     library versions (:func:`omniad_lite.env.versions`)
``extra``        what only this notebook measures (figures, shapes, ONNX parity, a sweep's rows …)
===============  ============================================================================================

:func:`collect` gives one row per results file and class (the ``mean`` row included; one row with
``class = None`` for a file without metrics), with the columns ``notebook``, ``results``, ``run_dir``,
``class``, the metrics, ``param.<name>`` per parameter, the config's dotted keys (``method``,
``model.encoder``, ``train.epochs`` …), the times and ``version.<library>``. Ours (the released code has
no notebooks).
"""
from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from .config import ExperimentConfig
from .errors import InputError
from .files import write_json
from .results import MEAN_ROW, EvalResult, plain

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
KEYS = ("schema", "notebook", "parameters", "config", "run_dir", "metrics", "times", "versions", "extra")


def metrics_record(metrics: EvalResult | pd.DataFrame | None, protocol: str = "kit") -> dict[str, Any] | None:
    """``{"protocol", "mean", "per_class"}`` from an :class:`EvalResult` or its per-class table (percent)."""
    if metrics is None:
        return None
    table = metrics.table if isinstance(metrics, EvalResult) else metrics
    protocol = metrics.protocol if isinstance(metrics, EvalResult) else table.attrs.get("protocol", protocol)
    rows = {str(c): {k: plain(v) for k, v in row.items()} for c, row in table.iterrows()}
    return {"protocol": protocol, "mean": rows.pop(MEAN_ROW, None), "per_class": rows}


def write_results(output_dir: str | os.PathLike, notebook: str, parameters: dict[str, Any], *,
                  config: ExperimentConfig | None = None, run_dir: str | os.PathLike | None = None,
                  metrics: EvalResult | pd.DataFrame | None = None, times: dict[str, float] | None = None,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write ``output_dir/results.json`` in the schema above; returns its path.

    Args:
        output_dir: the notebook's output folder.
        notebook: the notebook's name (``"00_quickstart"``).
        parameters: the notebook's parameters (:func:`omniad_lite.notebook_params.notebook_parameters`).
        config: the experiment the notebook ran.
        run_dir: the run directory it trained or used.
        metrics: an :class:`EvalResult` or a per-class metrics table (rows: classes, then ``mean``).
        times: durations in seconds.
        extra: the notebook's own measurements (JSON-ready; other values are written as strings).
    """
    from .env import versions  # lazy: env imports torch, and a notebook without a model needs none of it

    record = {"schema": SCHEMA_VERSION, "notebook": notebook, "parameters": parameters,
              "config": config.to_dict() if config is not None else None,
              "run_dir": str(run_dir) if run_dir is not None else None, "metrics": metrics_record(metrics),
              "times": {k: round(float(v), 2) for k, v in (times or {}).items()}, "versions": versions(),
              "extra": extra or {}}
    path = Path(output_dir) / RESULTS_FILE
    write_json(path, json.loads(json.dumps(record, default=_plain)))
    return path


def _plain(value: Any) -> Any:
    """JSON for what ``json`` cannot write itself: NumPy numbers, paths, tuples inside objects."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _flatten(d: dict[str, Any] | None, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    return out


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """One ``results.json``, checked against the schema (a file of another shape raises naming it)."""
    with open(path) as f:
        record = json.load(f)
    missing = [k for k in KEYS if k not in record] if isinstance(record, dict) else list(KEYS)
    if missing or record.get("schema") != SCHEMA_VERSION:
        raise InputError(f"{path} is not a results.json of schema {SCHEMA_VERSION} (missing {missing}); write it "
                         f"with omniad_lite.notebook_results.write_results")
    return record


def _rows(path: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    common = {"notebook": record["notebook"], "results": path, "run_dir": record["run_dir"],
              **_flatten(record["parameters"], "param."), **_flatten(record["config"], ""),
              **_flatten(record["times"], ""), **_flatten(record["versions"], "version.")}
    metrics = record["metrics"]
    if not metrics:
        return [{**common, "class": None}]
    classes = {**metrics["per_class"], **({MEAN_ROW: metrics["mean"]} if metrics["mean"] else {})}
    return [{**common, "class": c, "protocol": metrics["protocol"], **values} for c, values in classes.items()]


def collect(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Read many ``results.json`` into one DataFrame: one row per file and class (see the module docstring).

    Args:
        paths: a glob pattern (``"runs/**/results.json"``, ``**`` recursive), a folder (searched
            recursively) or a list of files.

    Raises:
        InputError: nothing matches, or a file is not in the schema.
    """
    if isinstance(paths, (str, os.PathLike)):
        pattern = Path(paths) / "**" / RESULTS_FILE if Path(paths).is_dir() else Path(paths)
        files = sorted(glob.glob(str(pattern), recursive=True))
    else:
        files = [str(p) for p in paths]
    if not files:
        raise InputError(f"no results.json matches {paths}; pass a pattern like 'runs/**/results.json'")
    rows = [row for f in files for row in _rows(f, read_results(f))]
    return pd.DataFrame(rows)
