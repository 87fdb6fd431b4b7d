"""``omniad-lite predict`` as one library call: images and folders in, overlays + ``scores.csv`` + a table out.

Every image gets an overlay PNG at its own resolution (:func:`omniad_lite.viz.overlays.decision_overlay`:
the map on the fixed normalised scale, the decision written on it, a colour bar) and a row in
``scores.csv``: path, class, score, normalised score, threshold, decision, error, overlay file. A file that
cannot be read is reported on one line and gets an error row; the others are still predicted.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from .data.formats import is_image
from .errors import DataWarning, InputError, ThresholdWarning, warn
from .evaluation.prediction import iter_predictions, resolve_model, write_scores_csv
from .viz.overlays import decision_label, decision_overlay

SCORES_CSV = "scores.csv"
TABLE_COLUMNS = ["file", "class", "score", "normalized_score", "threshold", "decision"]


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given, folders replaced by the image files under them (recursive, sorted).

    Raises:
        FileNotFoundError: a path does not exist (nothing has been written yet).
        ValueError: a folder holds no image.
    """
    out: list[Path] = []
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"not found: {', '.join(missing)}; pass existing image files or folders")
    for p in map(Path, paths):
        if p.is_dir():
            found = [f for f in sorted(p.rglob("*"))
                     if is_image(f) and not any(part.startswith(".") for part in f.relative_to(p).parts)]
            if not found:
                raise InputError(f"no images in folder {p}: pass image files (.png, .jpg, ...) or a folder of them")
            out += found
        else:
            out.append(p)
    return out


def _overlay_name(path: Path, used: set[str]) -> str:
    name, k = f"{path.stem}_overlay.png", 1
    while name in used:  # same file name in different folders
        k += 1
        name = f"{path.stem}_{k}_overlay.png"
    used.add(name)
    return name


def predict_to_folder(run_or_model, paths: list[str | Path], out_dir: str | Path, *, cls_name: str | None = None,
                      device="auto", batch_size: int = 16, progress: bool = True) -> pd.DataFrame:
    """Predict every image of ``paths`` (files or folders), write overlays and ``scores.csv`` into ``out_dir``.

    Args:
        run_or_model: a run directory or :class:`~omniad_lite.run.LoadedRun` (with its thresholds).
        paths: image files and/or folders of images.
        out_dir: output folder (created).
        cls_name: the class whose threshold decides for every image (``None``: per image, see
            :mod:`omniad_lite.evaluation.prediction`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        batch_size: images per forward pass.
        progress: progress bar.

    Returns:
        The table of decisions, one row per image (:data:`TABLE_COLUMNS`, then ``error`` and ``overlay``).
    """
    files = expand_paths(paths)
    model, thresholds = resolve_model(run_or_model)
    if thresholds is None:
        warn(f"{run_or_model} has no thresholds.json: scores only, no decisions and no heat maps on the "
             f"overlays; calibrate it with `omniad-lite calibrate --run RUN`", ThresholdWarning)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictions, extra, used = [], {}, set()
    for pred in iter_predictions(model, [str(f) for f in files], cls_name=cls_name, thresholds=thresholds,
                                 device=device, batch_size=batch_size, progress=progress, keep_image=True):
        i = len(predictions)
        extra[i] = {"overlay": ""}
        if pred.error is not None:
            warn(f"{pred.path}: {pred.error}", DataWarning)
        else:
            extra[i]["overlay"] = _overlay_name(Path(pred.path), used)
            label = decision_label(pred.score, pred.normalized_score, pred.is_anomalous, pred.cls_name)
            image = decision_overlay(pred.image, pred.normalized_map, label, pred.is_anomalous)
            Image.fromarray(image).save(out / extra[i]["overlay"])
            pred.anomaly_map = pred.image = None  # written; keep memory bounded on large folders
        predictions.append(pred)
    write_scores_csv(predictions, out / SCORES_CSV, extra)
    rows = [{**p.to_row(), **extra[i], "file": Path(p.path).name} for i, p in enumerate(predictions)]
    return pd.DataFrame(rows, columns=[*TABLE_COLUMNS, "error", "overlay", "path"])


def format_table(table: pd.DataFrame) -> str:
    """The decision table as aligned text (the CLI prints it)."""
    shown = table[TABLE_COLUMNS].copy()
    for c in ("score", "threshold"):
        shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    shown["normalized_score"] = shown["normalized_score"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    return shown.to_string(index=False)
