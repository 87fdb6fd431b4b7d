"""Teacher-feature cache: run the frozen encoder over the train split once, then skip it every epoch.

Omni-AD trains with no augmentation and the feature jitter is added *after* the neck
(``OmniAD.reconstruct``), so the encoder's output for a training image is the same at every epoch. The
released code (github easyoo/Omni-AD) recomputes it at every step; here ``train.cache_teacher_features``
can store it once, in fp16:

- ``"memory"``: three tensors ``(N, C_i, H_i, W_i)`` on the training device (resnet34 at 256²: 0.9 MB per
  image, 3.3 GB for MVTec-AD's 3,629 train images);
- ``"disk"``: three fp16 ``numpy.memmap`` files under ``<data cache_dir>/teacher/<key>/``, keyed by the
  encoder, its weights, the image size, the normalisation and the list of images, reused across runs.

The only difference from recomputing is the fp16 rounding of the teacher features (relative error about
5e-4; under AMP the encoder runs in 16-bit anyway).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from ..progress import tqdm

CACHE_DTYPE = np.float16
_COMPLETE = "complete.json"


class TeacherFeatureCache:
    """Teacher features of every train image, indexable by sample indices.

    Args:
        arrays: three arrays/tensors ``(N, C_i, H_i, W_i)`` (torch tensors on a device, or memmaps).
    """

    def __init__(self, arrays: list) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def batch(self, indices: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        """The features of ``indices`` as float32 tensors on ``device``: three ``(B, C_i, H_i, W_i)``."""
        out = []
        for a in self.arrays:
            if isinstance(a, torch.Tensor):
                t = a[indices.to(a.device)]
            else:  # memmap: sorted fancy indexing reads fewer pages, then restore the batch order
                order = np.argsort(indices.numpy())
                rows = np.asarray(a[indices.numpy()[order]])
                t = torch.from_numpy(rows[np.argsort(order)])
            out.append(t.to(device, non_blocking=True).float())
        return out


@torch.no_grad()
def compute_features(encoder: torch.nn.Module, dataset, device: torch.device, *, batch_size: int,
                     autocast, channels_last: bool, progress: bool, sinks: list | None = None) -> list:
    """Encode the whole dataset in order; write into ``sinks`` (memmaps) or return device tensors.

    Args:
        encoder: the frozen encoder (eval mode).
        dataset: an ``AnomalyDataset`` (items with an ``"image"`` tensor).
        device: where the encoder runs.
        batch_size: images per encoder call.
        autocast: a context-manager factory (the trainer's AMP setting).
        channels_last: feed channels-last images.
        progress: show a tqdm bar.
        sinks: three writable arrays of shape ``(N, C_i, H_i, W_i)``; ``None`` keeps tensors on ``device``.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    chunks: list[list[torch.Tensor]] = [[], [], []]
    start = 0
    for batch in tqdm(loader, desc="teacher features", disable=not progress, leave=False):
        images = batch["image"].to(device)  # (B, 3, S, S)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast():
            feats = encoder(images)
        for i, f in enumerate(feats):
            f16 = f.to(torch.float16)
            if sinks is None:
                chunks[i].append(f16.contiguous())
            else:
                sinks[i][start:start + len(f16)] = f16.cpu().numpy()
        start += len(images)
    if sinks is not None:
        return sinks
    return [torch.cat(c) for c in chunks]


def cache_key(model_cfg, image_size: int, mean, std, paths: list[str], seed: int) -> str:
    """A short hash of everything the cached features depend on (the seed too for a random-init teacher)."""
    weights = model_cfg.encoder_weights
    if weights is None:
        weights = f"random-init seed {seed}"
    elif Path(weights).is_file():  # a local weights file: its size and mtime too
        stat = Path(weights).stat()
        weights = f"{weights} {stat.st_size} {stat.st_mtime_ns}"
    blob = json.dumps({"encoder": model_cfg.encoder, "weights": weights,
                       "out_indices": list(model_cfg.out_indices), "size": image_size,
                       "mean": list(mean), "std": list(std), "paths": paths})
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def build_cache(mode: str, encoder: torch.nn.Module, dataset, device: torch.device, *, cache_root: Path,
                key: str, batch_size: int, autocast, channels_last: bool, progress: bool,
                is_main: bool = True, barrier=lambda: None) -> TeacherFeatureCache:
    """Build (or reuse, for ``"disk"``) the teacher-feature cache of ``dataset``.

    Args:
        mode: ``"memory"`` or ``"disk"``.
        encoder, dataset, device, batch_size, autocast, channels_last, progress: see :func:`compute_features`.
        cache_root: parent folder of disk caches.
        key: :func:`cache_key` of the dataset.
        is_main: only the main process writes a disk cache; the others wait at ``barrier`` then read it.
        barrier: a callable synchronising all processes.
    """
    if mode == "memory":
        return TeacherFeatureCache(compute_features(encoder, dataset, device, batch_size=batch_size,
                                                    autocast=autocast, channels_last=channels_last,
                                                    progress=progress))
    if mode != "disk":
        raise ValueError(f"cache_teacher_features={mode!r}: expected 'memory' or 'disk'")
    folder = cache_root / "teacher" / key
    if is_main and not (folder / _COMPLETE).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        probe = encoder(dataset[0]["image"][None].to(device))  # shapes of one image's features
        shapes = [(len(dataset), *f.shape[1:]) for f in probe]
        sinks = [np.lib.format.open_memmap(folder / f"scale{i}.npy", mode="w+", dtype=CACHE_DTYPE, shape=s)
                 for i, s in enumerate(shapes)]
        compute_features(encoder, dataset, device, batch_size=batch_size, autocast=autocast,
                         channels_last=channels_last, progress=progress, sinks=sinks)
        for s in sinks:
            s.flush()
        (folder / _COMPLETE).write_text(json.dumps({"shapes": shapes}) + "\n")
    barrier()
    arrays = [np.load(folder / f"scale{i}.npy", mmap_mode="r") for i in range(3)]
    if len(arrays[0]) != len(dataset):
        raise RuntimeError(f"teacher cache {folder} holds {len(arrays[0])} images, the train split "
                           f"{len(dataset)}; delete the folder to rebuild it")
    return TeacherFeatureCache(arrays)
