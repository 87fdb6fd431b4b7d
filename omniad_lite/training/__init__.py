"""Training: the released recipe as a resumable, deterministic, multi-process engine; the kNN fit.

- :mod:`.loop` — :func:`train` (Omni-AD), a readable sequence of named steps
- :mod:`.knn_fit` — :func:`~.knn_fit.fit_knn`, :func:`~.knn_fit.train_knn` (the kNN baseline as a run)
- :mod:`.optim` — :func:`build_optimizer` / :func:`build_scheduler` (shared with every benchmark)
- :mod:`.step` — the train step, precision (autocast), clipping
- :mod:`.state` — run-directory checks, RNG states
- :mod:`.checkpoint` — atomic checkpoints and resuming from them
- :mod:`.allocator` — the CPU allocator setting
- :mod:`.teacher_cache` — the frozen teacher's features computed once
- :mod:`.distributed` — ``torchrun`` + DistributedDataParallel with a global batch
- :mod:`.report` — evaluations during training and the run writer every method ends with (``metrics.json``,
  ``thresholds.json``)

``omniad_lite.train`` (:mod:`omniad_lite.methods`) runs whichever method a config names.
"""
from __future__ import annotations

from .loop import train
from .optim import build_optimizer, build_scheduler, param_groups

__all__ = ["train", "build_optimizer", "build_scheduler", "param_groups"]
