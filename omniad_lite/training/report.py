"""Evaluations during and after training, and ``metrics.json``/``metrics.csv``.

``metrics.json`` holds the *final* model's metrics as the headline (``final``) and, separately and labelled
as such, the released code's protocol (``best_over_training``): for each metric the best class-mean over all
periodic test evaluations (``train.eval_every`` epochs) and the final one. The released code (github
easyoo/Omni-AD, ADer's trainer) reports only the latter, which selects on the test set.
"""
from __future__ import annotations

import time
from typing import Any

from ..data.images import check_pair
from ..evaluation.calibration import calibrate_model
from ..evaluation.evaluator import evaluate, test_dataset, write_metrics
from ..progress import tqdm
from ..results import EvalResult
from ..run import RunDir

BEST_NOTE = ("released code's protocol: for each metric separately, the best class-mean over all test-set "
             "evaluations during training (selection on the test set; the headline is 'final')")


def check_test_split(cfg, preprocess, progress: bool) -> None:
    """Build the test split now, so its problems stop the run before training, not after it.

    Raises the data layer's one-line errors: no test folder for a class, an anomalous image without a mask,
    a mask whose size differs from its image's, an unreadable image. With the image cache on, building it
    decodes every test image (the evaluations reuse it); without, every header is read.
    """
    dataset = test_dataset(cfg, preprocess, progress)
    if dataset.cache is None:
        for s in tqdm(dataset.samples, desc="checking the test split", disable=not progress, leave=False):
            check_pair(s.image_path, s.mask_path)


def periodic_evaluation(model, cfg, step: int, epoch: int, device, progress: bool) -> dict:
    """Evaluate during training; returns ``{step, epoch, mean}`` (plain values, stored in train_state.pt)."""
    result = evaluate(model, cfg, device=device, progress=progress)
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


def final_evaluation(model, cfg, run: RunDir, evaluations: list[dict], step: int, epoch: float, device,
                     progress: bool, *, train_time_s: float, extra: dict[str, Any] | None = None,
                     threshold_note: bool = True) -> EvalResult:
    """Evaluate the final model, write ``metrics.json``/``metrics.csv`` and ``thresholds.json``, return the result.

    Every method's run ends here (Omni-AD's training and the kNN fit), so every run directory holds the same
    files. The thresholds come from the held-out normal images (``data.val_fraction``) at the default
    false-positive rate (:mod:`omniad_lite.evaluation.calibration`; ``omniad_lite.calibrate(run)`` re-chooses
    them). ``extra`` adds method-specific keys to ``metrics.json``.
    """
    t0 = time.perf_counter()
    result = evaluate(model, cfg, device=device, progress=progress)
    run.write_thresholds(calibrate_model(model, cfg, result, device=device, progress=progress,
                                         note=threshold_note).payload)
    final = {"step": step, "epoch": epoch, "mean": result.mean}
    write_metrics(run, result, {
        "headline": "final", "method": cfg.method, **(extra or {}), "step": step,
        "train_time_s": round(train_time_s, 2), "eval_time_s": round(time.perf_counter() - t0, 2),
        "best_over_training": best_over([*evaluations, final]) if evaluations else None})
    return result
