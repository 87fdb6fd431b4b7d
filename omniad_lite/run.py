"""Run directories: one class, :class:`RunDir`, owns every file name in a run and reads and writes them.

A run directory is self-contained: it loads with no network and no dataset.

=====================  ====================================================================================
file                   what
=====================  ====================================================================================
``config.json``        the resolved :class:`~omniad_lite.config.ExperimentConfig` plus library ``versions``
``model.safetensors``  the whole model's ``state_dict`` (frozen encoder included); the step in its metadata
``train_state.pt``     optimiser, scheduler, scaler, RNG states, step (``torch.load(weights_only=True)``)
``history.csv``        ``step, epoch, loss, lr, images_per_s``
``metrics.json``       the final evaluation (headline) and, labelled, the released "best over training"
``metrics.csv``        the final per-class table (percent)
``thresholds.json``    per-class image-score thresholds calibrated after training
``knn.json``           only in a kNN-baseline run (``omniad_lite.baselines``): its settings
=====================  ====================================================================================

Everything is written atomically (:func:`omniad_lite.files.atomic_write`). :func:`load_run` rebuilds the
model in eval mode and returns a :class:`LoadedRun` holding config, model and run directory.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ExperimentConfig
from .files import atomic_write, read_json, write_json

HISTORY_COLUMNS = ("step", "epoch", "loss", "lr", "images_per_s")


class RunDir:
    """The files of one run directory.

    Args:
        path: the directory (created when something is first written).
    """

    CONFIG = "config.json"
    MODEL = "model.safetensors"
    STATE = "train_state.pt"
    HISTORY = "history.csv"
    METRICS = "metrics.json"
    METRICS_CSV = "metrics.csv"
    THRESHOLDS = "thresholds.json"
    KNN = "knn.json"
    FILES = (CONFIG, MODEL, STATE, HISTORY, METRICS, METRICS_CSV, THRESHOLDS, KNN)

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def existing_files(self) -> list[str]:
        """The run files present in the directory (nothing else in it is ever touched)."""
        return [name for name in self.FILES if (self.path / name).exists()]

    def has_model(self) -> bool:
        return (self.path / self.MODEL).is_file()

    # -- config ------------------------------------------------------------------------------------------
    def save_config(self, cfg: ExperimentConfig, versions: dict | None = None) -> None:
        """Write ``config.json``; ``versions`` (torch/timm/CUDA/git) is stored beside the config keys."""
        d = cfg.to_dict()
        if versions is not None:
            d["versions"] = versions
        write_json(self.path / self.CONFIG, d)

    def load_config(self) -> ExperimentConfig:
        if not (self.path / self.CONFIG).is_file():
            raise FileNotFoundError(f"{self.path} is not a run directory: {self.CONFIG} is missing "
                                    f"(train one with `omniad-lite train --out {self.path}`)")
        return ExperimentConfig.load(self.path / self.CONFIG)

    # -- weights -----------------------------------------------------------------------------------------
    def save_model(self, model, metadata: dict[str, str] | None = None) -> None:
        """Write the model's weights to ``model.safetensors`` (unwrapped model: not DDP or compiled)."""
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        atomic_write(self.path / self.MODEL, lambda tmp: save_file(state, tmp, metadata=metadata))

    def load_state_dict(self) -> dict:
        """The saved ``state_dict`` (safetensors: no code runs when it is read)."""
        from safetensors.torch import load_file

        if not self.has_model():
            raise FileNotFoundError(f"{self.path / self.MODEL} is missing: the run in {self.path} has not "
                                    f"saved a model yet")
        return load_file(str(self.path / self.MODEL))

    def model_metadata(self) -> dict[str, str]:
        """The string metadata stored in the safetensors header (the trainer stores the step)."""
        from safetensors import safe_open

        with safe_open(str(self.path / self.MODEL), framework="pt") as f:
            return dict(f.metadata() or {})

    # -- history.csv -------------------------------------------------------------------------------------
    def open_history(self, keep_until_step: int) -> None:
        """Create ``history.csv`` with its header, or cut it back to rows with ``step <= keep_until_step``.

        Rows logged after the last checkpoint of an interrupted run are dropped: the resumed run computes
        those steps again.
        """
        path = self.path / self.HISTORY
        rows: list[list[str]] = []
        if keep_until_step > 0 and path.is_file():
            with path.open(newline="") as f:
                rows = [[r[c] for c in HISTORY_COLUMNS] for r in csv.DictReader(f)
                        if int(r["step"]) <= keep_until_step]

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(HISTORY_COLUMNS)
                w.writerows(rows)

        atomic_write(path, write)

    def append_history(self, row: dict[str, float]) -> None:
        """Append one row (``step, epoch, loss, lr, images_per_s``) to ``history.csv``."""
        with (self.path / self.HISTORY).open("a", newline="") as f:
            csv.writer(f).writerow([row[c] for c in HISTORY_COLUMNS])

    def read_history(self) -> list[dict[str, float]]:
        """``history.csv`` as a list of dicts with float values."""
        with (self.path / self.HISTORY).open(newline="") as f:
            return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]

    # -- metrics and thresholds --------------------------------------------------------------------------
    def write_metrics(self, payload: dict[str, Any], table_csv: str) -> None:
        """Write ``metrics.json`` (``payload``) and ``metrics.csv`` (the per-class table as CSV text)."""
        atomic_write(self.path / self.METRICS_CSV, lambda tmp: Path(tmp).write_text(table_csv))
        write_json(self.path / self.METRICS, payload)

    def read_metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` or ``None`` when the run has not been evaluated."""
        path = self.path / self.METRICS
        return read_json(path, "metrics file") if path.is_file() else None

    def save_thresholds(self, payload: dict[str, Any]) -> None:
        write_json(self.path / self.THRESHOLDS, payload)

    def load_thresholds(self) -> dict[str, Any] | None:
        """``thresholds.json`` or ``None`` when the run has none."""
        path = self.path / self.THRESHOLDS
        return read_json(path, "thresholds file") if path.is_file() else None


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


def load_run(run_dir: str | os.PathLike, device="cpu") -> LoadedRun:
    """Load a run directory's config and model (eval mode) on ``device``.

    Args:
        run_dir: a directory written by :func:`omniad_lite.train` (or its :class:`RunDir`).
        device: ``"cpu"``, ``"cuda"``, ... (a ``torch.device`` too).
    """
    from .model import build_model

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    cfg = run.load_config()
    state = run.load_state_dict()
    if (run / RunDir.KNN).is_file():  # a kNN-baseline run: teacher + memory bank
        from .baselines.knn import load_knn

        return LoadedRun(cfg, load_knn(cfg.model, read_json(run / RunDir.KNN, "kNN settings"), state).to(device), run)
    # The saved state holds the encoder too, so no weights source is needed to rebuild it.
    model = build_model(type(cfg.model)(**{**cfg.model.__dict__, "encoder_weights": None}))
    model.load_state_dict(state, strict=True)
    return LoadedRun(cfg, model.to(device).eval(), run)
