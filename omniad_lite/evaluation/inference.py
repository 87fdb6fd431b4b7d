"""The one inference path: batches of prepared images in, anomaly maps out.

``evaluate``, ``predict``, the notebooks' explorer and the CLI all score images through :func:`iter_maps`,
so there is one place that puts the model in eval mode, disables autograd, seeds the random state and
restores the model afterwards. Inference is deterministic: the torch RNG is forked and seeded, so even
``ffn="resampled"`` (the released code's FFN, redrawn at every call) gives the same maps each time.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

from ..env import resolve_device
from ..model.anomaly_map import anomaly_map, image_scores
from ..progress import tqdm

EVAL_SEED = 0  # seeds the forked RNG during inference (only matters for ffn="resampled")


def _rng_devices(dev: torch.device) -> list[int]:
    """CUDA device indices whose RNG ``torch.random.fork_rng`` must save and restore."""
    if dev.type != "cuda":
        return []
    return [dev.index if dev.index is not None else torch.cuda.current_device()]


@contextmanager
def inference_session(model: torch.nn.Module, device: str | torch.device = "auto") -> Iterator[torch.device]:
    """Model on ``device`` in eval mode under ``torch.inference_mode`` with a forked, seeded RNG.

    Yields the resolved device; the model's train/eval mode is restored on exit (it stays on the device).
    """
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    try:
        with torch.random.fork_rng(devices=_rng_devices(dev)), torch.inference_mode():
            torch.manual_seed(EVAL_SEED)
            yield dev
    finally:
        model.train(was_training)


def forward_maps(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, S, S)`` prepared images → ``(B, S, S)`` float32 anomaly maps on the images' device."""
    features, reconstructions = model(images)
    return anomaly_map(features, reconstructions, tuple(images.shape[-2:])).float()


def forward_scores(model: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, S, S)`` maps and ``(B,)`` image scores; a model with ``score_images`` (the kNN baseline) scores itself."""
    score_images = getattr(model, "score_images", None)
    if score_images is not None:
        maps, scores = score_images(images)
        return maps.float(), scores.float()
    maps = forward_maps(model, images)
    return maps, image_scores(maps)


def iter_maps(model: torch.nn.Module, batches: Iterable, *, device: str | torch.device = "auto",
              progress: bool = False, desc: str = "score", total: int | None = None) -> Iterator[tuple]:
    """Score batches; yields ``(batch, maps, scores)``: ``(B, S, S)`` float32 maps and ``(B,)`` image scores (NumPy).

    Args:
        model: ``model(images) -> (encoder_features, reconstructions)`` (an :class:`~omniad_lite.model.OmniAD`),
            or a model with ``score_images(images) -> (maps, scores)`` (:class:`~omniad_lite.baselines.knn.PatchKNN`).
        batches: tensors ``(B, 3, S, S)`` or dataset batches (dicts with an ``"image"`` tensor).
        device: where the model runs (``"auto"``: CUDA when available).
        progress: show a tqdm bar.
        desc: the bar's label.
        total: number of batches, for the bar.
    """
    with inference_session(model, device) as dev:
        for batch in tqdm(batches, desc=desc, disable=not progress, leave=False, total=total):
            images = batch["image"] if isinstance(batch, dict) else batch
            maps, scores = forward_scores(model, images.to(dev, non_blocking=True))  # (B, S, S), (B,)
            yield batch, maps.cpu().numpy(), scores.cpu().numpy()
