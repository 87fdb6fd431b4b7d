"""Score images with a trained model and decide: ``predict`` returns one :class:`~omniad_lite.results.Prediction` each.

Images are prepared exactly like the datasets prepare them, from the model's own ``preprocess`` (the run's
input size and normalisation) and scored through the one inference path (:mod:`.inference`). Given a run,
the decision uses its ``thresholds.json`` (:mod:`.thresholds`): ``is_anomalous = score >= threshold`` of the
image's class. The map comes back at the image's original size and aspect: the network sees the whole
image squashed to S×S (bilinear resize, no crop), turned upright by its EXIF orientation first (as viewers show
it: overlays and maps are at that orientation), so a bilinear resize of the S×S map back to H×W puts
every value over the pixels it came from. The score stays the maximum of the S×S map, as in evaluation.

Which class decides (a multi-class run has one threshold per class, and Omni-AD itself does not know the
class): ``cls_name`` when given; else the run's only class; else the nearest folder of the image's path
named like one of the run's classes (``.../bottle/img.png`` → ``bottle``); else the pooled threshold
``"all"`` (every class's held-out images together).

A file that cannot be read (missing, empty, corrupt, not an image) gives a Prediction with ``error`` set and
no score; the other images are still scored.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data.images import decode_image, header_size, upright
from ..errors import InputError
from ..progress import tqdm
from ..results import Prediction
from ..run import RunDir
from .calibration import load_thresholds
from .inference import iter_maps
from .run_loading import LoadedRun, load_run
from .thresholds import POOLED, Thresholds

READ_ERRORS = (FileNotFoundError, RuntimeError, ValueError, OSError)


def resolve_model(model_or_run, thresholds: Thresholds | dict | None = None, device="cpu"):
    """``(model, thresholds or None)`` from a model, a :class:`~omniad_lite.run.LoadedRun` or a run directory."""
    if isinstance(model_or_run, (str, Path, RunDir)):
        model_or_run = load_run(model_or_run, device=device)
    if isinstance(model_or_run, LoadedRun):
        thresholds = thresholds if thresholds is not None else load_thresholds(model_or_run.run_dir)
        model_or_run = model_or_run.model
    if isinstance(thresholds, dict):
        thresholds = Thresholds(thresholds)
    if not hasattr(model_or_run, "preprocess"):
        raise InputError(f"predict() needs an OmniAD model, a LoadedRun or a run directory, got "
                         f"{type(model_or_run).__name__}")
    return model_or_run, thresholds


def choose_class(path: str | None, cls_name: str | None, thresholds: Thresholds | None) -> str | None:
    """The class whose threshold decides for ``path`` (see the module docstring)."""
    if thresholds is None:
        return cls_name
    if cls_name is not None:
        thresholds.entry(cls_name)  # unknown names raise, listing the valid ones
        return cls_name
    if len(thresholds.classes) == 1:
        return thresholds.classes[0]
    for part in reversed(Path(path).parent.parts if path else ()):
        if part in thresholds.classes:
            return part
    return POOLED


def _prepare(item, preprocess, keep_image: bool) -> tuple[torch.Tensor, tuple[int, int] | None, np.ndarray | None]:
    """A path or PIL image → ``((3, S, S) tensor, original (W, H), original RGB (H, W, 3) uint8 or None)``.

    A path is decoded for the network exactly as the datasets decode it (reduced-size for large JPEGs); the
    full-size picture is decoded a second time only when ``keep_image`` asks for it (overlays), otherwise the
    original size comes from the file header.
    """
    if isinstance(item, (str, Path)):
        tensor = preprocess.normalise(preprocess.load(item))
        if not keep_image:
            return tensor, header_size(item, "image"), None  # upright (EXIF) size, no second decode
        full = decode_image(item)  # upright (EXIF orientation), original size, for the overlay
        return tensor, full.size, np.asarray(full)
    if isinstance(item, Image.Image):
        item = upright(item)  # a PIL image opened by the caller may still carry its EXIF orientation
        rgb = np.asarray(item.convert("RGB")) if keep_image else None  # (H, W, 3)
        return preprocess.normalise(preprocess.from_pil(item)), item.size, rgb
    raise InputError(f"predict() takes image paths, PIL images or tensors; got {type(item).__name__}")


def _items(images_or_paths) -> list:
    items = images_or_paths if isinstance(images_or_paths, (list, tuple)) else [images_or_paths]
    out: list = []
    for item in items:
        if isinstance(item, torch.Tensor):
            t = item if item.ndim == 4 else item.unsqueeze(0)  # (N, 3, S, S)
            if t.ndim != 4 or t.shape[1] != 3:
                raise InputError(f"predict() tensor input must be (3, S, S) or (N, 3, S, S), got {tuple(item.shape)}")
            out.extend(t.float().cpu())
        else:
            out.append(item)
    if not out:
        raise InputError("predict() got no images")
    return out


def _chunk(chunk: list, preprocess, keep_image: bool) -> list[dict[str, Any]]:
    """Prepare one chunk of inputs; a file that cannot be read gets an ``error`` instead of a tensor."""
    prepared = []
    for item in chunk:
        path = str(item) if isinstance(item, (str, Path)) else None
        if isinstance(item, torch.Tensor):
            prepared.append({"path": None, "tensor": item, "size": None, "rgb": None})
            continue
        try:
            tensor, size, rgb = _prepare(item, preprocess, keep_image)
            prepared.append({"path": path, "tensor": tensor, "size": size, "rgb": rgb})
        except READ_ERRORS as e:
            if path is None:
                raise
            prepared.append({"path": path, "error": str(e)})
    return prepared


def iter_predictions(model_or_run, images_or_paths, *, cls_name: str | None = None,
                     thresholds: Thresholds | dict | None = None, original_size: bool = True, device="auto",
                     batch_size: int = 16, progress: bool = False, keep_image: bool = False) -> Iterator[Prediction]:
    """Like :func:`predict`, one image at a time (memory stays bounded by ``batch_size`` images).

    With ``keep_image=True`` each :class:`Prediction` also holds its original RGB image (for overlays).
    """
    model, thresholds = resolve_model(model_or_run, thresholds)
    items = _items(images_or_paths)
    if thresholds is not None and cls_name is not None:
        thresholds.entry(cls_name)  # fail before scoring anything
    starts = range(0, len(items), batch_size)
    for start in tqdm(starts, desc="predict", disable=not progress, leave=False):
        prepared = _chunk(items[start:start + batch_size], model.preprocess, keep_image)
        ok = [p for p in prepared if "error" not in p]
        if ok:
            batch = torch.stack([p["tensor"] for p in ok])  # (B, 3, S, S)
            for _, maps, scores in iter_maps(model, [batch], device=device):
                for p, amap, score in zip(ok, maps, scores):  # amap: (S, S)
                    p["map"], p["score"] = amap, float(score)
        for p in prepared:
            pred = _decide(p, cls_name, thresholds, original_size)
            if keep_image:
                pred.image = p.get("rgb")
            yield pred


def _decide(p: dict, cls_name: str | None, thresholds: Thresholds | None, original_size: bool) -> Prediction:
    if "error" in p:
        return Prediction(path=p["path"], score=None, error=p["error"])
    amap = p["map"]
    if original_size and p["size"] is not None and p["size"] != amap.shape[::-1]:
        w, h = p["size"]
        amap = F.interpolate(torch.from_numpy(amap)[None, None], size=(h, w), mode="bilinear",
                             align_corners=False)[0, 0].numpy()  # (H, W)
    cls = choose_class(p["path"], cls_name, thresholds)
    pred = Prediction(path=p["path"], score=p["score"], anomaly_map=amap, cls_name=cls)
    if thresholds is not None:
        pred.threshold, pred.normalized_score, pred.is_anomalous = thresholds.decide(p["score"], cls)
        pred.normal_level = thresholds.entry(cls)["normal_level"]
    return pred


def predict(model_or_run, images_or_paths, *, cls_name: str | None = None,
            thresholds: Thresholds | dict | None = None, original_size: bool = True, device="auto",
            batch_size: int = 16, progress: bool = False) -> list[Prediction]:
    """Anomaly score, map and (with thresholds) decision of each image.

    Args:
        model_or_run: a run directory, a :class:`~omniad_lite.run.LoadedRun` (both bring their
            ``thresholds.json``) or a bare model (:class:`~omniad_lite.model.OmniAD`: scores only, unless
            ``thresholds`` is given).
        images_or_paths: a path, PIL image or tensor, or a list of them. Paths and PIL images are prepared with
            ``model.preprocess`` (the run's input size and normalisation); tensors must already be prepared,
            ``(3, S, S)`` or ``(N, 3, S, S)``.
        cls_name: the class whose threshold decides for every image (``None``: chosen per image, see the
            module docstring).
        thresholds: a :class:`~omniad_lite.evaluation.thresholds.Thresholds` (or its dict) overriding the run's.
        original_size: return maps at each image's original size (``False``: at the network size).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        batch_size: images per forward pass.
        progress: show a progress bar.

    Returns:
        One :class:`~omniad_lite.results.Prediction` per image, in input order; an unreadable file gives one
        with ``error`` set.
    """
    return list(iter_predictions(model_or_run, images_or_paths, cls_name=cls_name, thresholds=thresholds,
                                 original_size=original_size, device=device, batch_size=batch_size,
                                 progress=progress))


def write_scores_csv(predictions: list[Prediction], path: str | Path, extra: dict[int, dict] | None = None) -> Path:
    """Write one row per prediction (:meth:`Prediction.to_row`, plus ``extra[i]`` columns) to ``path``."""
    rows = [{**p.to_row(), **((extra or {}).get(i, {}))} for i, p in enumerate(predictions)]
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["path"])
        w.writeheader()
        w.writerows(rows)
    return path
