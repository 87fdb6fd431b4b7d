"""Resumable training state: the run-directory checks before a run starts, and RNG states.

Checkpoints themselves (one atomic folder per step, verified on resume) are :mod:`.checkpoint`. Every RNG
state is stored as tensors and plain values, so ``train_state.pt`` loads with
``torch.load(weights_only=True)``: no pickled code runs when a run is resumed. Here "N steps + resume + N
steps" equals "2N steps" bit for bit on CPU, with every teacher-cache mode (``tests/test_train.py``,
``tests/test_reliability.py``).
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..config import ExperimentConfig
from ..errors import InputError
from ..run import RunDir


# -- run directory ---------------------------------------------------------------------------------------
def prepare_run_dir(run: RunDir, cfg: ExperimentConfig, *, resume: bool | str, overwrite: bool) -> bool:
    """Check ``run_dir`` against the resume/overwrite flags; return True when a checkpoint will be resumed.

    Call it while holding the run's lock (:meth:`RunDir.lock`): temporary files of interrupted writes are
    removed, and ``overwrite`` deletes the previous run's files (only those: nothing else in the folder).

    ``resume="auto"`` (:func:`_prepare_auto`) resumes when there is a checkpoint and starts fresh otherwise.

    Raises:
        FileExistsError: the directory already holds a run and neither flag is set.
        FileNotFoundError: ``resume`` but the directory holds no run.
        ValueError: ``resume`` with a config that differs from the saved one (lists the differing keys).
    """
    if resume == "auto":
        return _prepare_auto(run, cfg, overwrite)
    if resume not in (True, False):
        raise InputError(f"resume={resume!r}: expected True, False or 'auto'")
    if resume and overwrite:
        raise InputError("pass either resume=True or overwrite=True, not both")
    run.remove_temp_files()
    existing = run.existing_files()
    if resume:
        if not (run / RunDir.CONFIG).is_file():
            raise FileNotFoundError(f"cannot resume: {run} holds no run ({RunDir.CONFIG} is missing); start it "
                                    f"without --resume")
        if (run / RunDir.STATE).is_file() and not run.checkpoint_steps():
            raise InputError(f"cannot resume {run}: it was written by an earlier omniad_lite "
                             f"({RunDir.STATE} beside the model); start it again with --overwrite")
        saved = run.load_config()
        differing = saved.diff(cfg)
        if differing:
            details = ", ".join(f"{k}: {_get(saved, k)!r} -> {_get(cfg, k)!r}" for k in differing)
            raise InputError(f"cannot resume {run}: the config differs from the saved one in "
                             f"{details}; resume with the same settings or start a new --out")
        return True
    if existing:
        if not overwrite:
            raise FileExistsError(f"{run} already holds a run ({', '.join(existing)}); pass --resume to "
                                  f"continue it, --overwrite to replace it, or choose another --out")
        run.remove_run_files()  # only our own files: never wipe a directory the user pointed us at
    return False


def has_checkpoint(run: RunDir) -> bool:
    """True when ``run`` holds a training checkpoint to resume from."""
    return bool(run.checkpoint_steps())


def _prepare_auto(run: RunDir, cfg: ExperimentConfig, overwrite: bool) -> bool:
    """``resume="auto"``: continue the same run, start fresh where nothing was trained, refuse anything else.

    Resumes when ``run`` holds a checkpoint written with ``cfg`` (a finished run is only evaluated again);
    starts fresh when it holds no run, or only the config and history of a run stopped before its first
    checkpoint (nothing trained is lost). A checkpoint of another config, or weights without a training
    state, are never replaced: that needs ``resume=False, overwrite=True`` or another directory.
    """
    if overwrite:
        raise InputError("resume='auto' keeps existing runs; pass resume=False with overwrite=True to replace one")
    run.remove_temp_files()
    if has_checkpoint(run):
        differing = run.load_config().diff(cfg) if (run / RunDir.CONFIG).is_file() else ["config.json missing"]
        if differing:
            raise InputError(f"{run} holds a checkpoint of another config (differs in {', '.join(differing)}); "
                             f"use the same settings to resume it, another output directory, or resume=False "
                             f"(--overwrite) to replace it")
        return True
    if run.has_model():
        raise FileExistsError(f"{run} holds {RunDir.MODEL} but no checkpoint to resume from; choose "
                              f"another output directory, or resume=False (--overwrite) to replace it")
    run.remove_run_files()  # config/history of a run stopped before its first checkpoint
    return False


def _get(cfg: ExperimentConfig, dotted: str) -> Any:
    node: Any = cfg.to_dict()
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


# -- RNG states as tensors/plain values (weights_only-loadable) ------------------------------------------
def capture_rng() -> dict[str, Any]:
    """RNG states of Python, NumPy and torch (CPU and every CUDA device) of this process."""
    version, mt_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
