"""The torch ``Dataset`` over a list of samples: normalised image, binary mask, label, class, path.

Preprocessing per SPEC.md (released configs of github easyoo/Omni-AD): resize to S×S bilinear, centre crop
S, normalise with the encoder's pretrained mean/std (ImageNet's by default), no augmentation; masks nearest
and binarised. With ``cache_dir`` the decoded uint8 images come from :class:`~omniad_lite.data.cache.ImageCache`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .cache import ImageCache
from .images import load_pair
from .samples import Sample, class_names

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # timm IMAGENET_DEFAULT_MEAN
IMAGENET_STD = (0.229, 0.224, 0.225)  # timm IMAGENET_DEFAULT_STD
UINT8_MAX = 255.0


def normalise_image(image_uint8: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(S, S, 3)`` uint8 → ``(3, S, S)`` float32: ``(x / 255 - mean) / std`` (the encoder's mean/std)."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return _normalise(image_uint8, 1.0 / (UINT8_MAX * std_t), mean_t / std_t)


def _normalise(image_uint8: np.ndarray, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(image_uint8)).permute(2, 0, 1).contiguous().float()  # (3, S, S)
    return x.mul_(scale).sub_(shift)  # (x / 255 - mean) / std, in place


class AnomalyDataset(Dataset):
    """Images and masks of ``samples``, preprocessed for the network.

    ``ds[i]`` is ``{"image": (3, S, S) float32 normalised, "mask": (1, S, S) float32 in {0, 1},
    "label": int, "cls_name": str, "path": str}``.

    Args:
        samples: from :func:`~omniad_lite.data.load_samples`.
        image_size: side S of the square network input (paper: 256).
        mean: per-channel normalisation mean (use the encoder's ``pretrained_cfg``).
        std: per-channel normalisation std.
        cache_dir: if set, decode every image once into a uint8 memmap cache there (built now, with a
            progress bar) and read from it afterwards.
        progress: show the progress bar when building the cache.
    """

    def __init__(self, samples: list[Sample], image_size: int = 256, mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD, cache_dir: str | Path | None = None,
                 progress: bool = True):
        if len(samples) == 0:
            raise ValueError("AnomalyDataset got no samples; check the root, split and classes given to "
                             "load_samples")
        if int(image_size) < 1:
            raise ValueError(f"image_size={image_size} must be a positive integer, e.g. 256")
        self.samples = list(samples)
        self.image_size = int(image_size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self._scale, self._shift = 1.0 / (UINT8_MAX * self.std), self.mean / self.std  # (3, 1, 1) each
        self.class_names = class_names(self.samples)
        self.labels = np.array([s.label for s in self.samples], dtype=np.int64)
        self.cache = ImageCache(self.samples, self.image_size, cache_dir, progress) if cache_dir else None

    def __len__(self) -> int:
        return len(self.samples)

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Resized uint8 image ``(S, S, 3)`` and binary uint8 mask ``(S, S)`` of sample ``i`` (for plots)."""
        if self.cache is not None:
            return self.cache.get(i)
        s = self.samples[i]
        return load_pair(s.image_path, s.mask_path, self.image_size)

    def normalise(self, image_uint8: np.ndarray) -> torch.Tensor:
        """``(S, S, 3)`` uint8 → ``(3, S, S)`` float32, scaled to [0, 1] then normalised."""
        return _normalise(image_uint8, self._scale, self._shift)

    def __getitem__(self, i: int) -> dict:
        image, mask = self.raw(i)
        s = self.samples[i]
        return {
            "image": self.normalise(image),  # (3, S, S)
            "mask": torch.from_numpy(mask).float().unsqueeze(0),  # (1, S, S)
            "label": int(s.label),
            "cls_name": s.cls_name,
            "path": s.image_path,
        }

    def __repr__(self) -> str:
        n_anom = int(self.labels.sum())
        return (f"AnomalyDataset({len(self)} images: {len(self) - n_anom} normal, {n_anom} anomalous; "
                f"{len(self.class_names)} classes; {self.image_size}px; cache={'on' if self.cache else 'off'})")
