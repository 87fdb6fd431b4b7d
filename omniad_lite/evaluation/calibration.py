"""Calibrate a run's decision thresholds: score the held-out normal images, write ``thresholds.json``.

Training calls :func:`calibrate_model` right after its final evaluation (the test scores come from that
evaluation, so nothing is scored twice). :func:`calibrate` does it for a saved run: with the run's
``thresholds.json`` present it only re-chooses the method / false-positive rate from the saved scores
(instant, no model); otherwise (or with ``rescore=True``) it loads the model and scores the held-out and
test images. The definitions are in :mod:`omniad_lite.evaluation.thresholds`.

A run whose ``config.json`` has no ``data.val_fraction`` key trained on every normal image: it has no
held-out images, and its normal scores come from the test split's normal images, marked as tuned on test data.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from torch.utils.data import DataLoader

from ..data import AnomalyDataset, default_cache_dir
from ..data.factory import has_validation, own_validation_split, samples_from_config
from ..errors import ThresholdWarning, warn
from ..files import read_json
from ..results import EvalResult
from ..run import RunDir
from .evaluator import evaluate
from .inference import iter_maps
from .run_loading import as_run_dir, load_run
from .thresholds import (
    DEFAULT_FPR,
    DEFAULT_METHOD,
    OWN_VALIDATION,
    POOLED,
    Thresholds,
    build_thresholds,
    check_fpr,
    check_method,
)

HELD_OUT = "held-out normal training images (data.val_fraction={fraction}, data.val_seed={seed})"
TEST_NORMALS = "normal test images (no held-out images: data.val_fraction=0): tuned on test data"


def score_samples(model, samples, cfg, *, device="auto", progress: bool = True) -> list[float]:
    """Image scores of ``samples`` (in order), prepared with ``model.preprocess`` and cached like the datasets."""
    cache = (Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else default_cache_dir()) \
        if cfg.data.cache_images else None
    dataset = AnomalyDataset(samples, model.preprocess, cache_dir=cache, progress=progress)
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=False, num_workers=cfg.data.num_workers)
    scores: list[float] = []
    for _, _, batch_scores in iter_maps(model, loader, device=device, progress=progress, desc="score held-out",
                                        total=len(loader)):
        scores += [float(s) for s in batch_scores]
    return scores


def calibrate_model(model, cfg, test_result: EvalResult, *, method: str = DEFAULT_METHOD, fpr: float = DEFAULT_FPR,
                    device="auto", progress: bool = True, note: bool = True) -> Thresholds:
    """Thresholds for ``model`` trained with ``cfg``, from its held-out images and ``test_result``'s scores.

    Args:
        model: the trained model.
        cfg: its :class:`~omniad_lite.config.ExperimentConfig` (``data.val_fraction``, ``data.val_seed``).
        test_result: the model's evaluation on the test split (its ``per_image`` scores and labels).
        method: ``"fpr"`` or ``"f1"``, the threshold decisions use.
        fpr: target false-positive rate.
        device: where the model runs.
        progress: progress bars.
        note: print the one-line note on thresholds that carry a warning (with ``progress``).
    """
    check_method(method)
    check_fpr(fpr)
    rows = test_result.per_image
    test = {c: (list(g["score"]), list(g["label"])) for c, g in rows.groupby("cls_name")}
    held = samples_from_config(cfg.data, "val") if has_validation(cfg.data) else []
    normal: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    if held:
        own = cfg.data.root is not None and own_validation_split(cfg.data.root, cfg.data.format)
        source = OWN_VALIDATION if own else HELD_OUT.format(fraction=cfg.data.val_fraction, seed=cfg.data.val_seed)
        for s, score in zip(held, score_samples(model, held, cfg, device=device, progress=progress)):
            normal[s.cls_name][0].append(score)
            normal[s.cls_name][1].append(s.image_path)
    else:
        source = TEST_NORMALS
        for c, g in rows[rows["label"] == 0].groupby("cls_name"):
            normal[c] = (list(g["score"]), list(g["path"]))
    thresholds = Thresholds(build_thresholds(dict(normal), test, method=method, fpr=fpr, normal_source=source))
    text = threshold_note(thresholds) if note else None
    if text and progress:  # quiet runs (a sweep) keep it in thresholds.json only
        warn(text, ThresholdWarning)
    return thresholds


def threshold_note(thresholds: Thresholds) -> str | None:
    """One line naming the classes whose threshold carries a warning (few held-out images, method fallback)."""
    warned = [c for c in thresholds.classes if thresholds.entry(c)["warning"]]
    if not warned:
        return None
    return (f"the thresholds of {', '.join(warned)} carry a warning in thresholds.json; e.g. {warned[0]}: "
            f"{thresholds.entry(warned[0])['warning']}")


def calibrate(run_dir, *, method: str | None = None, fpr: float | None = None, rescore: bool = False,
              device="auto", progress: bool = True) -> Thresholds:
    """(Re)calibrate a saved run's thresholds and rewrite its ``thresholds.json``.

    Args:
        run_dir: a run directory.
        method: ``"fpr"`` or ``"f1"`` (``None``: keep the saved choice, or the default ``"fpr"``).
        fpr: target false-positive rate (``None``: keep the saved one, or 1 %).
        rescore: score the held-out and test images again with the model even when scores are saved.
        device: where the model runs when scoring.
        progress: progress bars.
    """
    run = as_run_dir(run_dir)
    saved = run.read_thresholds()
    if saved is not None and not rescore:
        thresholds = Thresholds(saved).rechoose(method, fpr)
    else:
        loaded = load_run(run, device="cpu")
        cfg = loaded.config
        if "val_fraction" not in read_json(run / RunDir.CONFIG, "run config").get("data", {}):
            cfg = cfg.with_overrides({"data.val_fraction": 0.0})  # trained on every normal image
        result = evaluate(loaded.model, cfg, device=device, progress=progress)
        thresholds = calibrate_model(loaded.model, cfg, result, method=method or DEFAULT_METHOD,
                                     fpr=fpr or DEFAULT_FPR, device=device, progress=progress)
    run.write_thresholds(thresholds.payload)
    return thresholds


def load_thresholds(run_dir) -> Thresholds | None:
    """A run's :class:`Thresholds`, or ``None`` when it has no ``thresholds.json``."""
    saved = as_run_dir(run_dir).read_thresholds()
    return None if saved is None else Thresholds(saved)


__all__ = ["calibrate", "calibrate_model", "load_thresholds", "score_samples", "threshold_note", "POOLED"]
