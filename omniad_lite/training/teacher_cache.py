"""Teacher-feature cache: run the frozen encoder over the train split once, then skip it every epoch.

Omni-AD trains with no augmentation and the feature jitter is added *after* the neck
(``OmniAD.reconstruct``), so the encoder's output for a training image is the same at every epoch. The
released code (github easyoo/Omni-AD) recomputes it at every step; here ``train.cache_teacher_features``
can store it once, in fp16:

- ``"memory"``: three tensors ``(N, C_i, H_i, W_i)`` on the training device (resnet34 at 256²: 0.9 MB per
  image, 3.3 GB for MVTec-AD's 3,629 train images);
- ``"disk"``: three fp16 ``numpy.memmap`` files under ``<data cache_dir>/teacher/<key>/``, keyed by the
  encoder, its weights, the image size, the normalisation, the list of images and the image decoding rule
  (``DECODE_VERSION``), reused across runs.

The only difference from recomputing is the fp16 rounding of the teacher features (relative error about
5e-4; with train.precision bf16/fp16 the encoder runs in 16-bit anyway). Building the cache draws nothing from the global RNG
(its DataLoader has its own generator), so a run that builds the cache and one that reuses it are the same
run bit for bit.

A disk cache is built in a temporary folder (``teacher/.<key>.tmp-<pid>-…``; its files are allocated in full
first, so a full disk raises one line instead of SIGBUS) and renamed into place with a ``manifest.json`` of
the files' SHA-256, checked every time it is opened: a damaged or truncated cache is reported in one line
and rebuilt. Temporary folders of builders that died are removed.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from ..progress import tqdm

from ..data.images import DECODE_VERSION
from ..files import discard, remove, remove_stale_temps, reserve, temp_path
from ..integrity import verify_folder, write_manifest

CACHE_DTYPE = np.float16
SCALES = 3
NO_SPACE_HINT = "free space, point data.cache_dir (or $OMNIAD_LITE_CACHE) at a bigger disk, or use " \
                "train.cache_teacher_features=memory"


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
        autocast: a context-manager factory (the trainer's ``train.precision``).
        channels_last: feed channels-last images.
        progress: show a tqdm bar.
        sinks: three writable arrays of shape ``(N, C_i, H_i, W_i)``; ``None`` keeps tensors on ``device``.
    """
    # its own generator: a DataLoader iterator otherwise draws a seed from the global RNG, and a run that
    # builds the cache would then train with other jitter noise than one that reuses it
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                                         generator=torch.Generator())
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
                       "mean": list(mean), "std": list(std), "paths": paths, "decode": DECODE_VERSION})
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
    names = [f"scale{i}.npy" for i in range(SCALES)]
    if is_main:
        remove_stale_temps(folder.parent)
        if folder.exists():
            manifest, problem = verify_folder(folder, names)
            if problem is not None:
                if manifest is not None:  # no manifest: written by an earlier version, not damage
                    print(f"warning: teacher-feature cache {folder} is damaged ({problem}); rebuilding it",
                          file=sys.stderr)
                discard(folder)
        if not folder.exists():
            _build_disk(folder, names, encoder, dataset, device, batch_size=batch_size, autocast=autocast,
                        channels_last=channels_last, progress=progress)
    barrier()
    if not is_main:
        _, problem = verify_folder(folder, names)
        if problem is not None:
            raise RuntimeError(f"teacher-feature cache {folder} is damaged ({problem}); delete the folder and "
                               f"start again")
    arrays = [np.load(folder / name, mmap_mode="r") for name in names]
    if len(arrays[0]) != len(dataset):
        raise RuntimeError(f"teacher cache {folder} holds {len(arrays[0])} images, the train split "
                           f"{len(dataset)}; delete the folder to rebuild it")
    return TeacherFeatureCache(arrays)


@torch.no_grad()
def _build_disk(folder: Path, names: list[str], encoder, dataset, device, **kwargs) -> None:
    """Encode ``dataset`` into a temporary folder, write its manifest, rename it to ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(folder)
    tmp.mkdir()
    try:
        probe = encoder(dataset[0]["image"][None].to(device))  # shapes of one image's features
        shapes = [(len(dataset), *f.shape[1:]) for f in probe]
        sinks = []
        for name, shape in zip(names, shapes):
            sinks.append(np.lib.format.open_memmap(tmp / name, mode="w+", dtype=CACHE_DTYPE, shape=shape))
            reserve(tmp / name, "the teacher-feature cache", NO_SPACE_HINT)
        compute_features(encoder, dataset, device, sinks=sinks, **kwargs)
        for sink in sinks:
            sink.flush()
        del sinks
        write_manifest(tmp, names, {"shapes": shapes, "dtype": np.dtype(CACHE_DTYPE).name})
        tmp.rename(folder)
    except OSError as e:
        if folder.exists() and e.errno in (errno.ENOTEMPTY, errno.EEXIST):  # another process finished first
            return
        raise
    finally:
        remove(tmp)


# -- "auto": cache when it fits ------------------------------------------------------------------------------
AUTO_CACHE_FRACTION = 0.25  # "auto" caches in memory when the features take at most this share of it


def feature_bytes_per_image(channels: list[int], reductions: list[int], image_size: int) -> int:
    """Bytes of one image's cached teacher features: fp16, ``Σ C_i · ⌈S / r_i⌉²`` over the encoder's scales.

    resnet34 at 256²: 2 · (64·64² + 128·32² + 256·16²) = 917,504 bytes (0.875 MiB).
    """
    itemsize = np.dtype(CACHE_DTYPE).itemsize
    return itemsize * sum(c * (-(-image_size // r)) ** 2 for c, r in zip(channels, reductions))


def device_memory_bytes(device: torch.device) -> int | None:
    """Total memory of ``device``: the GPU's, or the machine's RAM for a CPU (``None`` if unknown)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def resolve_cache_mode(mode: str, cache_bytes: int, device: torch.device) -> str:
    """``train.cache_teacher_features`` with ``"auto"`` made concrete: ``"memory"`` if it fits, else ``"off"``.

    "Fits" means at most :data:`AUTO_CACHE_FRACTION` of the device's memory, leaving the rest to training
    (a T4's 15 GB: MVTec-AD's 3,629 train images at 256², 3.1 GiB, are cached; VisA's 8,659, 7.4 GiB, are not).
    """
    if mode != "auto":
        return mode
    capacity = device_memory_bytes(device)
    return "memory" if capacity is not None and cache_bytes <= AUTO_CACHE_FRACTION * capacity else "off"
