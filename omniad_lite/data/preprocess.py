"""What the network expects of an image: its square input side and its normalisation.

:class:`Preprocess` is carried by the model (``OmniAD.preprocess``, built from ``ModelConfig.image_size``,
``mean`` and ``std`` and saved with every run), so datasets, ``predict`` and the ONNX export all prepare
images the same way. The steps follow the paper's pipeline (docs/method.md, step 1; released configs of
github easyoo/Omni-AD): resize to S×S bilinear, scale to [0, 1], subtract ``mean`` and divide
by ``std`` per channel (the encoder's pretrained values by default); no augmentation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .images import load_image, preprocess_image

UINT8_MAX = 255.0


@dataclass(frozen=True)
class Preprocess:
    """Input size and normalisation of a model.

    Args:
        image_size: side S of the square network input.
        mean: per-channel mean of the normalisation (RGB, on the [0, 1] scale).
        std: per-channel std of the normalisation.
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if int(self.image_size) < 1:
            raise DataError(f"image_size={self.image_size} must be a positive integer, e.g. 256")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise DataError(f"mean={self.mean} and std={self.std} need 3 values each, std > 0")
        object.__setattr__(self, "image_size", int(self.image_size))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def normalise(self, image_uint8: np.ndarray) -> torch.Tensor:
        """``(S, S, 3)`` uint8 → ``(3, S, S)`` float32: ``(x / 255 - mean) / std``."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        x = torch.from_numpy(np.ascontiguousarray(image_uint8)).permute(2, 0, 1).float()  # (3, S, S)
        return x.div_(UINT8_MAX).sub_(mean).div_(std)

    def load(self, path: str | Path) -> np.ndarray:
        """Decode an image file and resize it to the network input: ``(S, S, 3)`` uint8."""
        return load_image(path, self.image_size)

    def from_pil(self, image) -> np.ndarray:
        """A PIL image resized to the network input: ``(S, S, 3)`` uint8."""
        return preprocess_image(image, self.image_size)

    def to_dict(self) -> dict:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}
