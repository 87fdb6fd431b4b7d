"""Training: the released recipe as a resumable, deterministic, multi-process engine.

- :mod:`.loop` — :func:`train`, a readable sequence of named steps
- :mod:`.optim` — :func:`build_optimizer` / :func:`build_scheduler` (shared with every benchmark)
- :mod:`.step` — the train step, precision (autocast), clipping
- :mod:`.state` — run-directory checks, checkpoints, RNG states
- :mod:`.teacher_cache` — the frozen teacher's features computed once
- :mod:`.distributed` — ``torchrun`` + DistributedDataParallel with a global batch
- :mod:`.report` — evaluations during/after training and ``metrics.json``
"""
from __future__ import annotations

from .loop import train
from .optim import build_optimizer, build_scheduler, param_groups

__all__ = ["train", "build_optimizer", "build_scheduler", "param_groups"]
