"""Multi-process training with PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

``torchrun --nproc_per_node=K -m omniad_lite train ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
:func:`setup` then joins the process group (NCCL on GPUs, gloo on CPU) and picks ``cuda:LOCAL_RANK``.

Global batch semantics: ``train.batch_size`` is the batch of one optimiser step summed over all
processes. Every process draws the same per-epoch permutation (seeded like ``DistributedSampler``:
``seed + epoch``), cuts it into global batches, and takes its ``1/K`` share of each
(:func:`global_batches`); DDP averages the gradients, so one step sees the same images with the same
weight as a single process would. BatchNorm in the neck normalises per process (SyncBatchNorm on GPUs,
see :func:`wrap_model`); on CPU gloo there is no SyncBatchNorm, so the neck's batch statistics come from
``batch/K`` images — the only difference from a single-process step.

The released code (ADer's trainer) also uses DDP with a per-GPU batch; here the configured batch is global.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..env import resolve_device
from ..errors import InputError


@dataclass
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` processes, using ``device``."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); else a single process.

    Args:
        device: the config's device (``"auto"``, ``"cpu"``, ``"cuda"``...). Under torchrun a CUDA device
            becomes ``cuda:LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world_size <= 1:
        return DistInfo(0, 1, dev)
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), dev)


def cleanup(info: DistInfo) -> None:
    """Leave the process group (only if :func:`setup` joined one)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of ``epoch``: a permutation drawn from a generator seeded with ``seed + epoch``.

    Stateless (like ``DistributedSampler``), so a resumed run needs only the epoch and the step inside it,
    and every process computes the same order.
    """
    g = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(num_samples, generator=g)  # (N,)


def global_batches(num_samples: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The epoch's global batches of sample indices (full batches only: the last partial batch is dropped)."""
    perm = epoch_permutation(num_samples, seed, epoch)
    steps = num_samples // batch_size
    return [perm[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def local_share(batch: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This process's contiguous ``1/K`` of a global batch (the batch size must divide by K)."""
    per_rank = batch.numel() // info.world_size
    return batch[info.rank * per_rank:(info.rank + 1) * per_rank]


def check_batch(batch_size: int, info: DistInfo) -> None:
    if batch_size % info.world_size:
        raise InputError(f"train.batch_size={batch_size} must be divisible by the number of processes "
                         f"({info.world_size}); the batch size is global (summed over processes)")


def wrap_model(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DistributedDataParallel around the trainable step when running under torchrun (else unchanged)."""
    if not info.enabled:
        return module
    if info.device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=[info.device.index])
    return torch.nn.parallel.DistributedDataParallel(module)


def mean_across(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a scalar over processes (the logged loss of a global batch)."""
    if not info.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def gather_objects(obj, info: DistInfo) -> list:
    """Every process's ``obj`` (e.g. RNG states) as a list indexed by rank."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
