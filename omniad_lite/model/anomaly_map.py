"""Anomaly maps and image scores from encoder features and their reconstructions.

Reimplements the scoring step of Omni-AD (arXiv 2503.21125, Sec. 3.4) as released (easyoo/Omni-AD, which
inherits it from ADer/MambaAD ``cal_anomaly_map`` + ``gaussian_filter``):

1. per scale, ``1 - cosine(encoder_feature, reconstruction)`` over channels → ``(B, h_i, w_i)``;
2. bilinear upsampling to the input size with ``align_corners=True``;
3. mean over the scales (the released code averages, it does not multiply);
4. a Gaussian blur with σ = 4 per image;
5. image score = maximum of the blurred map.

Where we differ: the released code blurs each map on the CPU with ``scipy.ndimage.gaussian_filter`` one image
at a time. We blur the whole batch on the input's device with a separable convolution that reproduces scipy's
kernel (radius ``int(truncate * sigma + 0.5)``, ``truncate = 4``) and its default ``mode="reflect"`` border.
Scipy's "reflect" repeats the edge sample (``d c b a | a b c d | d c b a``, half-sample symmetric), which is
*not* torch's ``F.pad(mode="reflect")`` (``d c b | a b c d | c b a``); we therefore gather with explicit
symmetric indices, which also covers images smaller than the kernel radius (the reflection repeats).
``tests/test_scoring.py`` checks the result against scipy to 1e-5.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import InputError

BLUR_SIGMA = 4.0  # paper / released code: gaussian_filter(sigma=4)
SCIPY_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter default: kernel radius = int(truncate * sigma + 0.5)


def gaussian_kernel1d(sigma: float, truncate: float = SCIPY_TRUNCATE, *, dtype=torch.float32,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 1-D Gaussian kernel scipy uses: ``exp(-x² / 2σ²)`` for ``|x| <= int(truncate·σ + 0.5)``.

    Args:
        sigma: standard deviation in pixels (> 0).
        truncate: kernel half-width in units of sigma (scipy's default 4.0).
        dtype: dtype of the returned kernel (computed in float64 first).
        device: device of the returned kernel.

    Returns:
        ``(2r + 1,)`` tensor summing to 1.
    """
    if not sigma > 0:
        raise InputError(f"sigma={sigma!r}: the Gaussian blur needs sigma > 0 (use sigma=0 to skip the blur)")
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / float(sigma)) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def _symmetric_indices(n: int, radius: int, device) -> torch.Tensor:
    """Indices ``-radius .. n-1+radius`` folded back into ``[0, n)`` the way scipy's ``mode='reflect'`` does."""
    idx = torch.arange(-radius, n + radius, device=device)
    period = 2 * n
    idx = torch.remainder(idx, period)  # periodic with period 2n
    return torch.where(idx >= n, period - 1 - idx, idx)  # mirror the second half (edge sample repeated)


def gaussian_blur(maps: torch.Tensor, sigma: float = BLUR_SIGMA, truncate: float = SCIPY_TRUNCATE) -> torch.Tensor:
    """Blur each ``(H, W)`` map of a batch like ``scipy.ndimage.gaussian_filter(m, sigma)`` (mode 'reflect').

    Args:
        maps: ``(B, H, W)`` floating-point tensor, any device.
        sigma: standard deviation in pixels; ``0`` returns the input unchanged.
        truncate: kernel half-width in units of sigma (scipy's default 4.0).

    Returns:
        ``(B, H, W)`` tensor, same dtype and device.
    """
    if maps.ndim != 3:
        raise InputError(f"gaussian_blur expects maps of shape (B, H, W), got {tuple(maps.shape)}")
    if sigma == 0:
        return maps
    b, h, w = maps.shape
    kernel = gaussian_kernel1d(sigma, truncate, dtype=maps.dtype, device=maps.device)  # (K,)
    radius = (kernel.numel() - 1) // 2
    x = maps.index_select(1, _symmetric_indices(h, radius, maps.device))  # (B, H + 2r, W)
    x = x.index_select(2, _symmetric_indices(w, radius, maps.device))  # (B, H + 2r, W + 2r)
    x = x.unsqueeze(1)  # (B, 1, H + 2r, W + 2r)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))  # (B, 1, H, W + 2r): blur along H
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))  # (B, 1, H, W): blur along W
    return x.squeeze(1)


def anomaly_map(encoder_features: Sequence[torch.Tensor], reconstructions: Sequence[torch.Tensor],
                image_size: int | tuple[int, int], sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Per-pixel anomaly map: mean over scales of upsampled ``1 - cos``, then a Gaussian blur.

    Args:
        encoder_features: list of ``(B, C_i, H_i, W_i)`` teacher features (one per scale).
        reconstructions: list of tensors with the same shapes, the decoder's reconstructions.
        image_size: output side ``S`` or ``(H, W)`` (the network input size, e.g. 256).
        sigma: Gaussian blur σ in pixels (paper: 4; ``0`` disables the blur).

    Returns:
        ``(B, H, W)`` float32 tensor on the input's device; values in ``[0, 2]``.
    """
    if len(encoder_features) != len(reconstructions) or len(encoder_features) == 0:
        raise InputError(f"anomaly_map needs one reconstruction per encoder feature; got {len(encoder_features)} "
                         f"features and {len(reconstructions)} reconstructions")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    total = None
    for i, (f, r) in enumerate(zip(encoder_features, reconstructions)):
        if f.shape != r.shape or f.ndim != 4:
            raise InputError(f"scale {i}: encoder feature {tuple(f.shape)} and reconstruction {tuple(r.shape)} "
                             "must have the same (B, C, H, W) shape")
        dist = 1.0 - F.cosine_similarity(f.float(), r.float(), dim=1)  # (B, H_i, W_i)
        up = F.interpolate(dist.unsqueeze(1), size=size, mode="bilinear", align_corners=True)  # (B, 1, H, W)
        total = up if total is None else total + up
    amap = (total / len(encoder_features)).squeeze(1)  # (B, H, W)
    return gaussian_blur(amap, sigma)


def image_scores(maps: torch.Tensor) -> torch.Tensor:
    """Image-level anomaly score: the maximum of each map.

    Args:
        maps: ``(B, H, W)`` anomaly maps.

    Returns:
        ``(B,)`` tensor.
    """
    if maps.ndim != 3:
        raise InputError(f"image_scores expects maps of shape (B, H, W), got {tuple(maps.shape)}")
    return maps.flatten(1).amax(dim=1)


__all__ = ["BLUR_SIGMA", "anomaly_map", "gaussian_blur", "gaussian_kernel1d", "image_scores"]
