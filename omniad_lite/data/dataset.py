"""The torch ``Dataset`` over a list of samples: normalised image, binary mask, label, class, path.

Preprocessing is the model's (:class:`~omniad_lite.data.preprocess.Preprocess`: resize to S×S bilinear,
normalise with the model's mean/std; no augmentation); masks are resized bilinear and
binarised at ½, as the released pipeline does (:func:`~omniad_lite.data.images.load_mask`). With
``cache_dir`` the decoded uint8 images come from :class:`~omniad_lite.data.cache.ImageCache`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .cache import ImageCache
from .images import load_pair
from .preprocess import Preprocess
from .sample import Sample, class_names


class AnomalyDataset(Dataset):
    """Images and masks of ``samples``, preprocessed for the network.

    ``ds[i]`` is ``{"image": (3, S, S) float32 normalised, "mask": (1, S, S) float32 in {0, 1},
    "mask_valid": bool, "label": int, "cls_name": str, "path": str}``. ``mask_valid`` is False for an
    anomalous image without a mask (``masks="optional"``): its all-zero mask is unknown, not "no defect",
    and evaluation leaves it out of the pixel metrics.

    Args:
        samples: from :func:`~omniad_lite.data.load_samples`.
        preprocess: the model's input size and normalisation (``model.preprocess``).
        cache_dir: if set, decode every image once into a uint8 memmap cache there (built now, with a
            progress bar) and read from it afterwards.
        progress: show the progress bar when building the cache.
    """

    def __init__(self, samples: list[Sample], preprocess: Preprocess, cache_dir: str | Path | None = None,
                 progress: bool = True):
        if len(samples) == 0:
            raise DataError("AnomalyDataset got no samples; check the root, split and classes given to "
                             "load_samples")
        if not isinstance(preprocess, Preprocess):
            raise DataError(f"AnomalyDataset needs a Preprocess (e.g. model.preprocess), got {preprocess!r}")
        self.samples = list(samples)
        self.preprocess = preprocess
        self.image_size = preprocess.image_size
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

    def __getitem__(self, i: int) -> dict:
        image, mask = self.raw(i)
        s = self.samples[i]
        return {
            "image": self.preprocess.normalise(image),  # (3, S, S)
            "mask": torch.from_numpy(mask).float().unsqueeze(0),  # (1, S, S)
            "mask_valid": s.label == 0 or s.mask_path is not None,
            "label": int(s.label),
            "cls_name": s.cls_name,
            "path": s.image_path,
        }

    def __repr__(self) -> str:
        n_anom = int(self.labels.sum())
        return (f"AnomalyDataset({len(self)} images: {len(self) - n_anom} normal, {n_anom} anomalous; "
                f"{len(self.class_names)} classes; {self.image_size}px; cache={'on' if self.cache else 'off'})")
