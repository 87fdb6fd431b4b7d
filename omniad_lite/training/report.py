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


def check_test_split(cfg, preprocess, progress: bool) -> None:
    """Build the test split now, so its problems stop the run before training, not after it.

    Raises the data layer's one-line errors: no test folder for a class, an anomalous image without a mask,
    a mask whose size differs from its image's, an unreadable image. With the image cache on, building it
    decodes every test image (the evaluations reuse it); without, every header is read.
    """
    from tqdm.auto import tqdm

    from ..data.images import check_pair
    from ..evaluation.evaluate import test_dataset

    dataset = test_dataset(cfg, preprocess, progress)
    if dataset.cache is None:
        for s in tqdm(dataset.samples, desc="checking the test split", disable=not progress, leave=False):
            check_pair(s.image_path, s.mask_path)


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
    """Evaluate the final model, write ``metrics.json``/``metrics.csv`` and ``thresholds.json``, return the result.

    The thresholds come from the held-out normal images (``data.val_fraction``) at the default false-positive
    rate (:mod:`omniad_lite.evaluation.calibration`; ``omniad_lite.calibrate(run)`` re-chooses them).
    """
    from ..evaluation.calibration import calibrate_model

    t0 = time.perf_counter()
    result = evaluate_config(model, cfg, device=device, progress=progress)
    run.save_thresholds(calibrate_model(model, cfg, result, device=device, progress=progress).payload)
    final = {"step": step, "epoch": epoch, "mean": result.mean}
    write_metrics(run, result, {
        "headline": "final", "step": step, "train_time_s": round(train_time_s, 2),
        "eval_time_s": round(time.perf_counter() - t0, 2),
        "best_over_training": best_over([*evaluations, final]) if evaluations else None})
    return result


def reevaluate(run_dir, *, data_root: str | None = None, protocol: str = "kit", device="auto",
               batch_size: int | None = None, progress: bool = True, replace: bool = False):
    """Evaluate a finished run on its test split (or ``data_root``'s) and record the result in the run.

    The run's lock is held meanwhile (a run being trained is refused). The test data is verified before use
    (image-cache hashes; a damaged cache is rebuilt), and nothing is written when evaluation fails.

    Args:
        run_dir: the run directory.
        data_root: evaluate on this dataset root instead of the one recorded in the run.
        protocol, device, batch_size, progress: see :func:`~omniad_lite.evaluation.evaluate.evaluate`; protocol
            ``"mvtec_ad2"`` runs :func:`~omniad_lite.evaluation.mvtec_ad2.evaluate_mvtec_ad2` instead.
        replace: rewrite the run's ``metrics.json``/``metrics.csv`` (the released "best over training"
            record is kept when the protocol is unchanged). By default the result is written beside them,
            in ``evaluations/`` (:meth:`RunDir.write_evaluation`), and the run's own metrics stay as trained.

    Returns:
        ``(EvalResult, [paths written])``.
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
    run = loaded.run_dir
    lock = run.lock("eval", fix="wait for it to finish, then evaluate again")
    try:
        run.remove_temp_files()
        t0 = time.perf_counter()
        if protocol == "mvtec_ad2":  # its own evaluation: thresholds from the validation normals, AU-PRO@0.05, SegF1
            from ..evaluation.mvtec_ad2 import evaluate_mvtec_ad2

            result = evaluate_mvtec_ad2(loaded.model, cfg, device=device, batch_size=batch_size, progress=progress)
        else:
            result = evaluate_config(loaded.model, cfg, protocol=protocol, batch_size=batch_size, device=device,
                                     progress=progress)
        previous = run.read_metrics() or {}
        kept = {k: previous[k] for k in ("method", "memory_bank") if k in previous}  # a kNN-baseline run's record
        extra = {**kept, "step": previous.get("step"), "eval_time_s": round(time.perf_counter() - t0, 2)}
        if replace:
            best = previous.get("best_over_training") if previous.get("protocol") == protocol else None
            write_metrics(run, result, {"headline": "final", **extra, "train_time_s": previous.get("train_time_s"),
                                        "best_over_training": best})
            return result, [run / RunDir.METRICS, run / RunDir.METRICS_CSV]
        payload = {**extra, "data_root": cfg.data.root, "protocol": result.protocol, "final": result.to_dict()}
        return result, list(run.write_evaluation(payload, result.table.to_csv(float_format="%.2f"), protocol))
    finally:
        lock.release()
