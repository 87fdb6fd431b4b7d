"""One atomic checkpoint: the weights and the training state of a step become visible together, or not at all.

A checkpoint is a folder ``checkpoints/step-NNNNNNNN/`` (names: :class:`~omniad_lite.run.RunDir`) holding
``model.safetensors`` (weights; the step in its metadata), ``train_state.pt`` (optimiser, lr scheduler, fp16
scaler, RNG states of every process, step, periodic evaluations, running-loss window; tensors and plain
values only, so it loads with ``torch.load(weights_only=True)``) and ``manifest.json`` (size and SHA-256 of
both, written last). Saving:

1. write both files into a temporary folder ``checkpoints/.step-N.tmp-<pid>-…`` and flush them to disk;
2. write the manifest, then rename the folder to ``step-N`` (one atomic rename: both files appear at once);
3. point the run's ``model.safetensors`` at the new weights (hard link, atomic rename);
4. only then delete the previous checkpoint.

A crash, a kill or a full disk at any point leaves the previous checkpoint complete and untouched (a full
disk is reported in one line, with the space needed). Resuming takes the newest checkpoint whose files
match its manifest; a damaged one is reported in one line and the next older one is used, if any (else
the error names the damaged file and ``--overwrite``).

The released code (github easyoo/Omni-AD, built on ADer) saves one ``ckpt.pth`` with ``torch.save`` of the
whole state; a crash during that write loses it, and resuming it is not bit-exact.
"""
from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import RecoveryWarning, RunStateError, warn
from ..files import NoSpaceError, discard, ensure_free, fsync_path, remove, set_default_mode, temp_path
from ..integrity import verify_folder, write_manifest
from ..run import RunDir

SPACE_MARGIN = 1.05  # free space asked for beyond the tensors' bytes (file headers, pickle framing)


def _kept(run: RunDir) -> str:
    steps = run.checkpoint_steps()
    return f"the previous checkpoint (step {steps[-1]}) is kept" if steps else "no checkpoint was written yet"


def all_finite(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> bool:
    """Whether every floating-point weight, buffer and optimiser-state tensor is finite."""
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    if optimizer is not None:
        tensors += [t for s in optimizer.state.values() for t in s.values()
                    if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not tensors:
        return True
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())  # one device sync


def _nbytes(obj: Any) -> int:
    """Bytes of the tensors inside a nested state (an estimate of the file size)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def save_checkpoint(run: RunDir, model: torch.nn.Module, state: dict[str, Any]) -> Path:
    """Write the checkpoint of ``state["step"]`` atomically; return its folder.

    Args:
        run: the run directory.
        model: the unwrapped model (not DDP or compiled).
        state: the training state (``step`` and everything needed to resume; weights_only-loadable).

    Raises:
        NoSpaceError: not enough free space (nothing was changed; the previous checkpoint is kept).
        RuntimeError: the write failed (one line naming the folder; the previous checkpoint is kept).
    """
    step = int(state["step"])
    final = run.checkpoint_dir(step)
    final.parent.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    needed = int((_nbytes(weights) + _nbytes(state)) * SPACE_MARGIN)
    no_space_hint = f"free space there, then --resume ({_kept(run)})"
    ensure_free(final.parent, needed, f"the checkpoint of step {step}", no_space_hint)
    tmp = temp_path(final)
    try:
        tmp.mkdir()
        save_file(weights, str(tmp / RunDir.MODEL), metadata={"step": str(step)})
        torch.save(state, tmp / RunDir.STATE)
        for name in (RunDir.MODEL, RunDir.STATE):
            set_default_mode(tmp / name)  # safetensors creates its file 0600
        write_manifest(tmp, [RunDir.MODEL, RunDir.STATE], {"step": step})
        if final.exists():  # only with folders copied in by hand: a run always moves past its newest checkpoint
            aside = temp_path(final)
            final.rename(aside)
            remove(aside)
        tmp.rename(final)
        fsync_path(final.parent)
    except Exception as e:
        remove(tmp)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or \
                shutil.disk_usage(final.parent).free < needed:
            raise NoSpaceError(f"no space left on {final.parent} for the checkpoint of step {step} (needs "
                               f"{needed / 2**20:.1f} MiB); {no_space_hint}") from None
        raise RunStateError(f"could not write the checkpoint of step {step} to {final.parent} ({reason}); "
                           f"{_kept(run)}: fix the cause, then --resume") from None
    except BaseException:  # KeyboardInterrupt: no half-written folder either
        remove(tmp)
        raise
    run.publish_model(final / RunDir.MODEL)
    for old in run.checkpoint_steps():
        if old < step:
            discard(run.checkpoint_dir(old))
    return final


def load_checkpoint(run: RunDir, model: torch.nn.Module, *, is_main: bool = True) -> dict[str, Any] | None:
    """Load the newest usable checkpoint into ``model`` and return its training state.

    Args:
        run: the run directory.
        model: receives the weights (strict).
        is_main: the process that may tidy the run directory (republish the model, drop damaged folders).

    Returns:
        The training state, or ``None`` when the run has no checkpoint at all (stopped before its first).

    Raises:
        RuntimeError: every checkpoint is damaged (one line naming the first problem and ``--overwrite``).
    """
    damaged: list[str] = []
    for step in reversed(run.checkpoint_steps()):
        folder = run.checkpoint_dir(step)
        _, problem = verify_folder(folder, [RunDir.MODEL, RunDir.STATE])
        if problem is None:
            try:
                weights = load_file(str(folder / RunDir.MODEL))
                state = torch.load(folder / RunDir.STATE, map_location="cpu", weights_only=True)
                if int(state["step"]) != step:
                    problem = f"{RunDir.STATE} holds step {state['step']}"
            except Exception as e:
                problem = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if problem is not None:
            damaged.append(f"{folder}: {problem}")
            continue
        for bad in damaged:
            warn(f"checkpoint {bad}; resuming from step {step} instead", RecoveryWarning)
        model.load_state_dict(weights, strict=True)
        if is_main:
            run.publish_model(folder / RunDir.MODEL)
            for bad in run.checkpoint_steps():
                if bad > step:
                    discard(run.checkpoint_dir(bad))
        return state
    if damaged:
        raise RunStateError(f"cannot resume {run}: no usable checkpoint ({damaged[0]}); start the run again "
                           f"with --overwrite")
    return None


def non_finite_message(run: RunDir, step: int, what: str) -> str:
    """The one-line error of a run stopped by non-finite values, naming the checkpoint that is kept.

    Args:
        run: the run directory.
        step: the step at which it was detected.
        what: e.g. ``"the training loss became nan"``.
    """
    kept = run.checkpoint_steps()
    if kept:
        where = f"the last good checkpoint in {run} (step {kept[-1]}) is kept"
        then = "start again (--overwrite) or --resume"
    else:
        where, then = f"no checkpoint had been written to {run} yet", "start again with --overwrite"
    return (f"{what} at or before step {step}; stopped before saving it: {where}. Lower train.lr, set "
            f"train.precision=fp32 or check the data, then {then}")


__all__ = ["save_checkpoint", "load_checkpoint", "all_finite", "non_finite_message"]
