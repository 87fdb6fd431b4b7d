"""Score a few images with a trained model: ``predict`` returns one :class:`~omniad_lite.results.Prediction` each.

Images are prepared exactly like the datasets prepare them, from the model's own ``preprocess`` (input size
and normalisation saved with the run), and scored through the one inference path (:mod:`.inference`).
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from ..results import Prediction
from .inference import iter_maps


def _prepare(item, preprocess) -> tuple[str | None, torch.Tensor]:
    """A path, PIL image or tensor → ``(path or None, (3, S, S) prepared tensor)``."""
    from PIL import Image

    if isinstance(item, (str, Path)):
        return str(item), preprocess.normalise(preprocess.load(item))
    if isinstance(item, Image.Image):
        return None, preprocess.normalise(preprocess.from_pil(item))
    raise ValueError(f"predict() takes image paths, PIL images or tensors; got {type(item).__name__}")


def _inputs(images_or_paths, preprocess) -> tuple[list[str | None], list[torch.Tensor]]:
    items = images_or_paths if isinstance(images_or_paths, (list, tuple)) else [images_or_paths]
    paths, tensors = [], []
    for item in items:
        if isinstance(item, torch.Tensor):
            t = item if item.ndim == 4 else item.unsqueeze(0)  # (N, 3, S, S)
            if t.ndim != 4 or t.shape[1] != 3:
                raise ValueError(f"predict() tensor input must be (3, S, S) or (N, 3, S, S), got {tuple(item.shape)}")
            tensors.extend(t.float().cpu())
            paths.extend([None] * len(t))
        else:
            path, tensor = _prepare(item, preprocess)
            paths.append(path)
            tensors.append(tensor)
    if not tensors:
        raise ValueError("predict() got no images")
    if len({tuple(t.shape) for t in tensors}) > 1:
        raise ValueError(f"predict() inputs have different sizes {sorted({tuple(t.shape) for t in tensors})}; "
                         "resize the tensors to one size")
    return paths, tensors


def predict(model, images_or_paths, *, device="auto", batch_size: int = 16,
            progress: bool = False) -> list[Prediction]:
    """Anomaly score and map of each image.

    Args:
        model: a trained model (:class:`~omniad_lite.model.OmniAD`, e.g. ``load_run(run_dir).model``).
        images_or_paths: a path, PIL image or tensor, or a list of them. Paths and PIL images are prepared with
            ``model.preprocess`` (the run's input size and normalisation); tensors must already be prepared,
            ``(3, S, S)`` or ``(N, 3, S, S)``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        batch_size: images per forward pass.
        progress: show a progress bar.

    Returns:
        One :class:`~omniad_lite.results.Prediction` per image, in input order.
    """
    paths, tensors = _inputs(images_or_paths, model.preprocess)
    batches = [torch.stack(tensors[i:i + batch_size]) for i in range(0, len(tensors), batch_size)]
    out: list[Prediction] = []
    for _, maps, scores in iter_maps(model, batches, device=device, progress=progress, desc="predict",
                                     total=len(batches)):
        for amap, score in zip(maps, scores):
            out.append(Prediction(path=paths[len(out)], score=float(score), anomaly_map=amap))
    return out


def write_scores_csv(predictions: list[Prediction], path: str | Path, extra: dict[int, dict] | None = None) -> Path:
    """Write one row per prediction (:meth:`Prediction.to_row`, plus ``extra[i]`` columns) to ``path``."""
    rows = [{**p.to_row(), **((extra or {}).get(i, {}))} for i, p in enumerate(predictions)]
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["path"])
        w.writeheader()
        w.writerows(rows)
    return path
