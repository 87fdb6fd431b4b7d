"""Evaluate a model on a test split, and score single images (``omniad-lite predict``).

Reimplements the test loop of the released code (easyoo/Omni-AD ``trainer``/ADer ``evaluator``): run the
test split, build each image's anomaly map (:func:`omniad_lite.scoring.anomaly_map`), image score = max,
metrics per class then averaged (:mod:`omniad_lite.metrics`). Where we differ:

- the protocol is explicit (``"kit"`` exact definitions or ``"released"``) and recorded in the table;
- the final model is evaluated once (no best-over-training selection);
- memory is bounded: small test sets (up to ``EXACT_MAX_PIXELS`` map pixels) are scored exactly, larger
  ones (Real-IAD) stream through one :class:`~omniad_lite.metrics.MetricAccumulator` per class;
- evaluation is deterministic: the model runs in eval mode under ``torch.inference_mode`` with the torch RNG
  forked and seeded, so even ``ffn="resampled"`` (the released behaviour) gives the same numbers each call;
  the model's train/eval mode is restored afterwards.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .metrics import MetricAccumulator, compute_metrics, metrics_table
from .scoring import anomaly_map, image_scores
from .utils import resolve_device

EXACT_MAX_PIXELS = 160_000_000  # ≈ 0.8 GB of float32 maps + masks; MVTec-AD (113 M) and VisA (142 M) fit
EVAL_SEED = 0  # seeds the forked RNG inside evaluation (only matters for ffn="resampled")
DEFAULT_IMAGE_SIZE = 256  # paper input size, used by predict() for files when no size is given
OVERLAY_ALPHA = 0.5  # heatmap weight in the predict overlays
OVERLAY_CMAP = "jet"
UINT8_MAX = 255.0


def _rng_devices(dev: torch.device) -> list[int]:
    """CUDA device indices whose RNG ``torch.random.fork_rng`` must save and restore."""
    if dev.type != "cuda":
        return []
    return [dev.index if dev.index is not None else torch.cuda.current_device()]


def _forward_maps(model, images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, S, S)`` normalised images → ``(B, S, S)`` anomaly maps on the images' device."""
    features, reconstructions = model(images)
    return anomaly_map(features, reconstructions, tuple(images.shape[-2:]))


def evaluate(model, dataset, *, batch_size: int = 16, device: str | torch.device = "auto", protocol: str = "kit",
             return_maps: bool = False, progress: bool = True, num_workers: int = 0, streaming: bool | None = None,
             rounded: bool = True, allow_undefined: bool = False):
    """Run ``dataset`` (a test split) through ``model`` and compute the per-class metrics table.

    Args:
        model: ``model(images) -> (encoder_features, reconstructions)``; moved to ``device`` (in place).
        dataset: items ``{"image" (3, S, S), "mask" (1, S, S), "label", "cls_name", "path"}``
            (e.g. :class:`~omniad_lite.data.AnomalyDataset`).
        batch_size: images per forward pass.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda:0"``, ...
        protocol: ``"kit"`` or ``"released"`` (see :mod:`omniad_lite.metrics`).
        return_maps: also return the maps (float16), scores, labels, masks, paths and classes.
        progress: show a tqdm progress bar.
        num_workers: DataLoader workers.
        streaming: ``True`` histogram accumulators (bounded memory, ~1e-4 accurate), ``False`` exact,
            ``None`` exact when the split has at most ``EXACT_MAX_PIXELS`` map pixels.
        rounded: round the table to one decimal like the papers (``df.attrs["per_class"]`` always keeps
            the unrounded fractions).
        allow_undefined: NaN instead of an error for a class whose metrics are undefined (e.g. no anomalies).

    Returns:
        The table (:func:`~omniad_lite.metrics.metrics_table`, percent, ``attrs["protocol"]``), or
        ``(table, maps_info)`` with ``return_maps``; ``maps_info`` has ``maps (N, S, S) float16``,
        ``scores (N,)``, ``labels (N,)``, ``masks (N, S, S) uint8``, ``paths``, ``cls_names`` in dataset order.
    """
    if len(dataset) == 0:
        raise ValueError("evaluate() got an empty dataset; check the test split's root and classes")
    dev = resolve_device(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    first = dataset[0]["image"]
    if streaming is None:
        streaming = len(dataset) * first.shape[-1] * first.shape[-2] > EXACT_MAX_PIXELS
    accs: dict[str, MetricAccumulator] = {}
    exact: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    kept: dict[str, list] = defaultdict(list)
    was_training = model.training
    model.to(dev).eval()
    try:
        with torch.random.fork_rng(devices=_rng_devices(dev)), torch.inference_mode():
            torch.manual_seed(EVAL_SEED)
            for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
                maps = _forward_maps(model, batch["image"].to(dev, non_blocking=True)).float()  # (B, S, S)
                scores = image_scores(maps).cpu().numpy()  # (B,)
                maps = maps.cpu().numpy()
                masks = batch["mask"].numpy()[:, 0] > 0.5  # (B, S, S)
                labels = np.asarray(batch["label"]).astype(np.int64)
                names = list(batch["cls_name"])
                for cls in dict.fromkeys(names):  # classes of this batch, in order of appearance
                    sel = np.array([n == cls for n in names])
                    if streaming:
                        acc = accs.setdefault(cls, MetricAccumulator(protocol, allow_undefined=allow_undefined))
                        acc.update(scores[sel], labels[sel], maps[sel], masks[sel])
                    else:
                        for k, v in (("scores", scores), ("labels", labels), ("maps", maps), ("masks", masks)):
                            exact[cls][k].append(v[sel])
                if return_maps:
                    for k, v in (("maps", maps.astype(np.float16)), ("scores", scores), ("labels", labels),
                                 ("masks", masks.astype(np.uint8)), ("paths", list(batch["path"])),
                                 ("cls_names", names)):
                        kept[k].append(v)
    finally:
        model.train(was_training)
    per_class = {}
    for cls in sorted(accs if streaming else exact):
        try:
            if streaming:
                per_class[cls] = accs[cls].compute()
            else:
                d = {k: np.concatenate(v) for k, v in exact.pop(cls).items()}
                per_class[cls] = compute_metrics(d["scores"], d["labels"], d["maps"], d["masks"], protocol,
                                                 allow_undefined=allow_undefined)
        except ValueError as e:
            raise ValueError(f"class {cls!r}: {e}") from None
    table = metrics_table(per_class, protocol=protocol, rounded=rounded)
    table.attrs.update(per_class=per_class, mode="streaming" if streaming else "exact", num_images=len(dataset))
    if not return_maps:
        return table
    info = {k: (sum(v, []) if k in ("paths", "cls_names") else np.concatenate(v)) for k, v in kept.items()}
    return table, info


# ----------------------------------------------------------------------------------------------------------
# single images
def _load_rgb(item, size: int) -> np.ndarray:
    """A path or PIL image → ``(S, S, 3)`` uint8, preprocessed exactly like the dataset."""
    from PIL import Image

    from .data.images import load_image, preprocess_image

    if isinstance(item, (str, Path)):
        return load_image(item, size)
    if isinstance(item, Image.Image):
        return preprocess_image(item, size)
    raise ValueError(f"predict() takes image paths, PIL images or tensors; got {type(item).__name__}")


def _normalise(rgb: np.ndarray, model) -> torch.Tensor:
    from .data.dataset import normalise_image

    return normalise_image(rgb, model.encoder.mean, model.encoder.std)  # (3, S, S)


def predict(model, images_or_paths, *, image_size: int | None = None, device: str | torch.device = "auto",
            batch_size: int = 16) -> dict[str, np.ndarray]:
    """Anomaly scores and maps for a few images.

    Args:
        model: a trained model (``model(images) -> (features, reconstructions)``, ``model.encoder.mean/std``).
        images_or_paths: a path, PIL image or tensor, or a list of them. Tensors must already be normalised
            ``(3, S, S)`` or ``(N, 3, S, S)``; paths and PIL images are resized (bilinear) to ``image_size``
            and normalised with the encoder's mean/std, as :class:`~omniad_lite.data.AnomalyDataset` does.
        image_size: network input side for paths/PIL images (default 256, the paper's).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        batch_size: images per forward pass.

    Returns:
        ``{"scores": (N,) float32, "maps": (N, S, S) float32}`` numpy arrays.
    """
    items = images_or_paths if isinstance(images_or_paths, (list, tuple)) else [images_or_paths]
    size = int(image_size or DEFAULT_IMAGE_SIZE)
    tensors = []
    for item in items:
        if isinstance(item, torch.Tensor):
            t = item if item.ndim == 4 else item.unsqueeze(0)
            if t.ndim != 4 or t.shape[1] != 3:
                raise ValueError(f"predict() tensor input must be (3, S, S) or (N, 3, S, S), got {tuple(item.shape)}")
            tensors.extend(t.float().cpu())
        else:
            tensors.append(_normalise(_load_rgb(item, size), model))
    if not tensors:
        raise ValueError("predict() got no images")
    if len({tuple(t.shape) for t in tensors}) > 1:
        raise ValueError(f"predict() inputs have different sizes {sorted({tuple(t.shape) for t in tensors})}; "
                         "resize the tensors to one size")
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    maps = []
    try:
        with torch.random.fork_rng(devices=_rng_devices(dev)), torch.inference_mode():
            torch.manual_seed(EVAL_SEED)
            for i in range(0, len(tensors), batch_size):
                maps.append(_forward_maps(model, torch.stack(tensors[i:i + batch_size]).to(dev)).float().cpu())
    finally:
        model.train(was_training)
    maps = torch.cat(maps)  # (N, S, S)
    return {"scores": image_scores(maps).numpy(), "maps": maps.numpy()}


def heatmap_overlay(rgb: np.ndarray, amap: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Blend a colour-mapped anomaly map onto an image: ``(S, S, 3)`` uint8."""
    import matplotlib

    norm = np.clip((amap - vmin) / max(vmax - vmin, np.finfo(np.float32).eps), 0.0, 1.0)
    heat = matplotlib.colormaps[OVERLAY_CMAP](norm)[..., :3]  # (S, S, 3) in [0, 1]
    blend = (1 - OVERLAY_ALPHA) * rgb / UINT8_MAX + OVERLAY_ALPHA * heat
    return np.round(blend * UINT8_MAX).astype(np.uint8)


def predict_cli(args) -> None:
    """``omniad-lite predict --run RUN IMAGE... --out DIR``: overlay PNGs and ``scores.csv``.

    Every overlay uses one colour scale, ``[0, max over all given images]``, so images are comparable.
    """
    from PIL import Image

    from .checkpoint import load_run

    paths = [Path(p) for p in args.images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {', '.join(missing)}")
    device = resolve_device(args.device)
    cfg, model = load_run(args.run, device=device)
    size = int(cfg.data.image_size)
    out = predict(model, [str(p) for p in paths], image_size=size, device=device)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    vmax = float(out["maps"].max())
    used: set[str] = set()
    rows = []
    for p, score, amap in zip(paths, out["scores"], out["maps"]):
        name, k = f"{p.stem}_heatmap.png", 1
        while name in used:  # same file name in different folders
            k += 1
            name = f"{p.stem}_{k}_heatmap.png"
        used.add(name)
        rgb = _load_rgb(p, size)
        Image.fromarray(heatmap_overlay(rgb, amap, 0.0, vmax)).save(out_dir / name)
        rows.append((str(p), f"{float(score):.6f}", name))
    with open(out_dir / "scores.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "score", "heatmap"])
        w.writerows(rows)
    print(f"wrote {len(rows)} heatmaps and scores.csv to {out_dir}")


__all__ = ["evaluate", "predict", "predict_cli", "heatmap_overlay", "EXACT_MAX_PIXELS"]
