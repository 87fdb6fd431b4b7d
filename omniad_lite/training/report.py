"""Evaluations during and after training, and ``metrics.json``/``metrics.csv``.

``metrics.json`` holds the *final* model's metrics as the headline (``final``) and, separately and labelled
as such, the released code's protocol (``best_over_training``): for each metric the best class-mean over all
periodic test evaluations (``train.eval_every`` epochs) and the final one. The released code (github
easyoo/Omni-AD, ADer's trainer) reports only the latter, which selects on the test set.
"""
from __future__ import annotations

import time
from typing import Any

from ..evaluation.evaluate import evaluate_config
from ..results import EvalResult
from ..run import RunDir

BEST_NOTE = ("released code's protocol: for each metric separately, the best class-mean over all test-set "
             "evaluations during training (selection on the test set; the headline is 'final')")


def periodic_evaluation(model, cfg, step: int, epoch: int, device, progress: bool) -> dict:
    """Evaluate during training; returns ``{step, epoch, mean}`` (plain values, stored in train_state.pt)."""
    result = evaluate_config(model, cfg, device=device, progress=progress)
    return {"step": step, "epoch": epoch, "mean": result.mean}


def best_over(evaluations: list[dict]) -> dict[str, Any]:
    """Per-metric best class-mean over ``evaluations`` (each ``{step, epoch, mean}``), with where it occurred."""
    best: dict[str, float] = {}
    at: dict[str, int] = {}
    for e in evaluations:
        for k, v in e["mean"].items():
            if v is not None and (k not in best or v > best[k]):
                best[k], at[k] = v, e["epoch"]
    return {"note": BEST_NOTE, "mean": best, "at_epoch": at, "evaluations": evaluations}


def write_metrics(run: RunDir, result: EvalResult, extra: dict[str, Any]) -> None:
    """Write ``metrics.csv`` (the per-class table) and ``metrics.json`` (``extra`` + the final evaluation)."""
    run.write_metrics({**extra, "protocol": result.protocol, "final": result.to_dict()},
                      result.table.to_csv(float_format="%.2f"))


def final_evaluation(model, cfg, run: RunDir, evaluations: list[dict], step: int, epoch: float, device,
                     progress: bool, *, train_time_s: float) -> EvalResult:
    """Evaluate the final model, write ``metrics.json``/``metrics.csv``, return the result."""
    t0 = time.perf_counter()
    result = evaluate_config(model, cfg, device=device, progress=progress)
    final = {"step": step, "epoch": epoch, "mean": result.mean}
    write_metrics(run, result, {
        "headline": "final", "step": step, "train_time_s": round(train_time_s, 2),
        "eval_time_s": round(time.perf_counter() - t0, 2),
        "best_over_training": best_over([*evaluations, final]) if evaluations else None})
    return result


def reevaluate(run_dir, *, data_root: str | None = None, protocol: str = "kit", device="auto",
               batch_size: int | None = None, progress: bool = True) -> EvalResult:
    """Evaluate a finished run on its test split (or ``data_root``'s) and rewrite its metrics files.

    The released "best over training" record is kept when the protocol is unchanged (it is not comparable
    across protocols).
    """
    from pathlib import Path

    from ..env import resolve_device
    from ..run import load_run

    device = resolve_device(device)
    loaded = load_run(run_dir, device=device)
    cfg = loaded.config
    if data_root:
        if not Path(data_root).is_dir():
            raise FileNotFoundError(f"data root {data_root} does not exist")
        cfg = cfg.with_overrides({"data.root": str(data_root)})
    t0 = time.perf_counter()
    result = evaluate_config(loaded.model, cfg, protocol=protocol, batch_size=batch_size, device=device,
                             progress=progress)
    previous = loaded.run_dir.read_metrics() or {}
    best = previous.get("best_over_training") if previous.get("protocol") == protocol else None
    kept = {k: previous[k] for k in ("method", "memory_bank") if k in previous}  # a kNN-baseline run's record
    write_metrics(loaded.run_dir, result, {
        **kept, "headline": "final", "step": previous.get("step"), "eval_time_s": round(time.perf_counter() - t0, 2),
        "train_time_s": previous.get("train_time_s"), "best_over_training": best})
    return result
