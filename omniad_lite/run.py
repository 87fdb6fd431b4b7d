"""Run directories: one class, :class:`RunDir`, owns every file name in a run and reads and writes them.

A run directory is self-contained: it loads with no network and no dataset. Every method writes the same
files (``config.json``, ``model.safetensors``, ``metrics.json``/``metrics.csv``, ``thresholds.json``; the kNN
baseline adds its settings, ``knn.json``). Everything is written atomically
(:func:`omniad_lite.files.atomic_write`); a checkpoint folder appears whole (renamed into place after its
files and their hashes are on disk, :mod:`omniad_lite.training.checkpoint`), and ``model.safetensors`` is the
newest checkpoint's model (a hard link, or a copy where links are not supported).
:func:`omniad_lite.evaluation.run_loading.load_run` rebuilds the model from these files.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from .config import ExperimentConfig
from .errors import RunStateError
from .files import atomic_write, fsync_path, read_json, remove, remove_stale_temps, temp_path, write_json
from .integrity import MANIFEST, check_file, read_manifest
from .lock import RunLock

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
    CHECKPOINTS = "checkpoints"
    EVALUATIONS = "evaluations"
    LOCK = ".lock"
    CHECKPOINT_MANIFEST = MANIFEST  # in each checkpoint folder, written last (omniad_lite.integrity)
    KNN = "knn.json"
    FILES = (CONFIG, MODEL, STATE, HISTORY, METRICS, METRICS_CSV, THRESHOLDS, CHECKPOINTS, EVALUATIONS, KNN)
    _STEP_DIR = re.compile(r"^step-(\d{8})$")

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
        """The run files and folders present in the directory (nothing else in it is ever touched)."""
        return [name for name in self.FILES if (self.path / name).exists()]

    def remove_run_files(self) -> None:
        """Delete the run's own files and folders and leftover temporary files (``--overwrite``; hold the lock)."""
        for name in sorted(self.existing_files(), key=lambda n: n == self.CONFIG):  # config.json last: an
            remove(self.path / name)  # interrupted --overwrite leaves a run that --resume restarts from 0
        self.remove_temp_files()

    def remove_temp_files(self) -> None:
        """Delete temporary files of interrupted writes (call while holding the lock: no one else writes)."""
        for folder in (self.path, self.path / self.CHECKPOINTS, self.path / self.EVALUATIONS):
            remove_stale_temps(folder, everyone=True)

    def lock(self, purpose: str = "train", **kwargs) -> RunLock:
        """Take the run's lock (:class:`~omniad_lite.lock.RunLock`, ``fix=`` the advice to a refused writer)."""
        return RunLock(self.path, self.LOCK, purpose, **kwargs).acquire()

    def has_model(self) -> bool:
        return (self.path / self.MODEL).is_file()

    # -- checkpoints -------------------------------------------------------------------------------------
    def checkpoint_dir(self, step: int) -> Path:
        """The folder of the checkpoint taken after ``step`` optimiser steps."""
        return self.path / self.CHECKPOINTS / f"step-{step:08d}"

    def checkpoint_steps(self) -> list[int]:
        """Steps of the checkpoint folders present, ascending (complete or not: see the manifest)."""
        folder = self.path / self.CHECKPOINTS
        if not folder.is_dir():
            return []
        return sorted(int(m[1]) for d in folder.iterdir() if (m := self._STEP_DIR.match(d.name)))

    def publish_model(self, source: Path) -> None:
        """Make ``model.safetensors`` the given checkpoint model, atomically (hard link, else a copy)."""
        tmp = temp_path(self.path / self.MODEL)
        try:
            try:
                os.link(source, tmp)
            except OSError:  # no hard links here (some network/FUSE filesystems): copy
                shutil.copyfile(source, tmp)
                fsync_path(tmp)
            os.replace(tmp, self.path / self.MODEL)
        finally:
            remove(tmp)

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
        from safetensors.torch import save_file  # lazy: keeps omniad_lite.run torch-free

        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        atomic_write(self.path / self.MODEL, lambda tmp: save_file(state, tmp, metadata=metadata))

    def load_state_dict(self) -> dict:
        """The saved ``state_dict`` (safetensors: no code runs when it is read), checked against its hash.

        Raises:
            RuntimeError: the file is truncated, unreadable or differs from the hash its checkpoint recorded
                (one line naming the file and the fix).
        """
        from safetensors.torch import load_file  # lazy: keeps omniad_lite.run torch-free

        path = self.path / self.MODEL
        if not self.has_model():
            raise FileNotFoundError(f"{path} is missing: the run in {self.path} has not saved a model yet")
        step = self.model_metadata().get("step")
        for s in reversed(self.checkpoint_steps()):
            manifest = read_manifest(self.checkpoint_dir(s))
            if manifest is not None and str(manifest.get("step")) == step:
                problem = check_file(path, manifest["files"].get(self.MODEL))
                if problem:
                    raise RunStateError(f"{path}: {problem}; restore the run from a backup or train it again "
                                       f"(--overwrite)")
                break
        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types on damaged files
            raise RunStateError(self._unreadable(path, e)) from None

    def model_metadata(self) -> dict[str, str]:
        """The string metadata stored in the safetensors header (the trainer stores the step)."""
        from safetensors import safe_open  # lazy: keeps omniad_lite.run torch-free

        path = self.path / self.MODEL
        try:
            with safe_open(str(path), framework="pt") as f:
                return dict(f.metadata() or {})
        except Exception as e:
            raise RunStateError(self._unreadable(path, e)) from None

    @staticmethod
    def _unreadable(path: Path, error: Exception) -> str:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return (f"cannot read {path} ({reason}): the file is truncated or corrupt; restore the run from a "
                f"backup or train it again (--overwrite)")

    # -- history.csv -------------------------------------------------------------------------------------
    def open_history(self, keep_until_step: int) -> None:
        """Create ``history.csv`` with its header, or cut it back to rows with ``step <= keep_until_step``.

        Rows logged after the last checkpoint of an interrupted run are dropped: the resumed run computes
        those steps again.
        """
        path = self.path / self.HISTORY
        rows: list[list[str]] = []
        if keep_until_step > 0 and path.is_file():
            rows = [[r[c] for c in HISTORY_COLUMNS] for r in self._history_rows()
                    if int(float(r["step"])) <= keep_until_step]

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
        return [{k: float(v) for k, v in r.items()} for r in self._history_rows()]

    def _history_rows(self) -> list[dict[str, str]]:
        """Complete rows only: a row cut short by a killed process (always the last one) is skipped."""
        def complete(r: dict) -> bool:
            if None in r or any(r.get(c) in (None, "") for c in HISTORY_COLUMNS):
                return False
            try:
                return all(isinstance(float(r[c]), float) for c in HISTORY_COLUMNS)
            except ValueError:
                return False

        with (self.path / self.HISTORY).open(newline="") as f:
            return [r for r in csv.DictReader(f) if complete(r)]

    # -- metrics and thresholds --------------------------------------------------------------------------
    def write_metrics(self, payload: dict[str, Any], table_csv: str) -> None:
        """Write ``metrics.json`` (``payload``) and ``metrics.csv`` (the per-class table as CSV text)."""
        atomic_write(self.path / self.METRICS_CSV, lambda tmp: Path(tmp).write_text(table_csv))
        write_json(self.path / self.METRICS, payload)

    def write_evaluation(self, payload: dict[str, Any], table_csv: str, protocol: str) -> tuple[Path, Path]:
        """Write a later evaluation beside the run's metrics: ``evaluations/<time>-<protocol>.json/.csv``."""
        folder = self.path / self.EVALUATIONS
        folder.mkdir(parents=True, exist_ok=True)
        stem, k = f"{time.strftime('%Y%m%d-%H%M%S')}-{protocol}", 1
        while (folder / f"{stem}.json").exists():
            k += 1
            stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{protocol}-{k}"
        atomic_write(folder / f"{stem}.csv", lambda tmp: Path(tmp).write_text(table_csv))
        write_json(folder / f"{stem}.json", payload)
        return folder / f"{stem}.json", folder / f"{stem}.csv"

    def read_metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` or ``None`` when the run has not been evaluated."""
        path = self.path / self.METRICS
        return read_json(path, "metrics file") if path.is_file() else None

    def write_thresholds(self, payload: dict[str, Any]) -> None:
        """Write ``thresholds.json`` (:attr:`omniad_lite.evaluation.thresholds.Thresholds.payload`)."""
        write_json(self.path / self.THRESHOLDS, payload)

    def read_thresholds(self) -> dict[str, Any] | None:
        """``thresholds.json`` as saved, or ``None`` (:func:`omniad_lite.evaluation.load_thresholds` wraps it)."""
        path = self.path / self.THRESHOLDS
        return read_json(path, "thresholds file") if path.is_file() else None
