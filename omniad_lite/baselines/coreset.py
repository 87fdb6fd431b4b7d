"""Greedy k-center coreset subsampling of a patch-feature memory bank, in bounded memory.

PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022, Sec. 3.2 and
Algorithm 1) keeps only a *coreset* of the training patch features: a subset whose every other feature lies
close to some kept one. It selects it greedily (the k-center greedy of Sener & Savarese, ICLR 2018):
start from one random feature, then repeatedly add the feature farthest from everything selected so far.
Distances are taken after a random linear projection to a few dimensions (Johnson–Lindenstrauss), which
keeps them approximately and makes each iteration cheap.

Written here from the papers' description. Ours: :class:`MemoryBankBuilder` bounds the memory of *fitting*
too — it never holds more than ``max_candidates`` features; when the buffer would overflow it is reduced to
the target size by the same greedy selection (a merge-and-reduce over chunks), so a dataset of any size fits.
When everything fits in one buffer, the result is exactly one greedy pass over all features.
"""
from __future__ import annotations

import math

import torch

from ..errors import InputError
from ..progress import tqdm


def random_projection(features: torch.Tensor, dim: int | None, seed: int) -> torch.Tensor:
    """``(N, D)`` → ``(N, dim)`` by a Gaussian random matrix with variance ``1/dim`` (identity when ``D <= dim``).

    The scaling keeps squared distances unbiased (Johnson–Lindenstrauss); only the selection uses them.
    """
    n, d = features.shape
    if not dim or d <= dim:
        return features
    gen = torch.Generator(device="cpu").manual_seed(seed)
    matrix = torch.randn(d, dim, generator=gen) / math.sqrt(dim)  # (D, dim)
    return features @ matrix.to(features.device, features.dtype)  # (N, dim)


def greedy_coreset(features: torch.Tensor, size: int, *, projection_dim: int | None = 128, seed: int = 0,
                   progress: bool = False) -> torch.Tensor:
    """Indices of a greedy k-center coreset of ``features``.

    Args:
        features: ``(N, D)`` float tensor (any device).
        size: number of features to keep (all of them when ``size >= N``).
        projection_dim: distances are computed after a random projection to this many dimensions
            (``None``/``0``: on the features themselves).
        seed: seeds the first (random) pick and the projection.
        progress: show a progress bar.

    Returns:
        ``(min(size, N),)`` int64 indices in selection order (no repeats).
    """
    n = features.shape[0]
    if size < 1:
        raise InputError(f"coreset size={size} must be >= 1")
    if size >= n:
        return torch.arange(n, device=features.device)
    x = random_projection(features.float(), projection_dim, seed)  # (N, d)
    sq_norms = (x * x).sum(dim=1)  # (N,)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    first = int(torch.randint(n, (1,), generator=gen))
    selected = torch.empty(size, dtype=torch.long, device=x.device)
    selected[0] = first
    # squared distance of every feature to its closest selected one: ‖x‖² − 2 x·c + ‖c‖²
    min_sq = (sq_norms - 2 * (x @ x[first]) + sq_norms[first]).clamp_(min=0)  # (N,)
    for k in tqdm(range(1, size), desc="coreset", disable=not progress, leave=False, mininterval=0.5):
        nxt = int(torch.argmax(min_sq))
        selected[k] = nxt
        dist = (sq_norms - 2 * (x @ x[nxt]) + sq_norms[nxt]).clamp_(min=0)  # (N,)
        torch.minimum(min_sq, dist, out=min_sq)
    return selected


def coreset_target(total: int, ratio: float, max_size: int) -> int:
    """Rows kept from ``total`` features: ``ceil(ratio · total)``, at most ``max_size``, at least 1."""
    return max(1, min(max_size, math.ceil(ratio * total)))


class MemoryBankBuilder:
    """Collect patch features batch by batch and reduce them to a coreset of ``target`` rows.

    Args:
        target: rows of the final memory bank.
        max_candidates: most features held at once (must exceed ``target``).
        projection_dim: see :func:`greedy_coreset`.
        seed: see :func:`greedy_coreset` (each reduction uses ``seed + its index``).
        progress: progress bars for the reductions.

    Attributes:
        peak_rows: the most features the buffer ever held (``<= max_candidates``).
        reductions: how many merge-and-reduce steps ran before the final selection.
    """

    def __init__(self, target: int, max_candidates: int, *, projection_dim: int | None = 128, seed: int = 0,
                 progress: bool = False) -> None:
        if max_candidates <= target:
            raise InputError(f"knn.max_candidates={max_candidates} must exceed the memory-bank size {target}; "
                             f"raise max_candidates or lower coreset_size/coreset_ratio")
        self.target, self.max_candidates = target, max_candidates
        self.projection_dim, self.seed, self.progress = projection_dim, seed, progress
        self.chunks: list[torch.Tensor] = []
        self.rows = self.peak_rows = self.reductions = 0

    def add(self, features: torch.Tensor) -> None:
        """Add ``(n, D)`` features (reduced first whenever the buffer would exceed ``max_candidates``)."""
        free = self.max_candidates - self.rows
        while len(features) > free:
            if free > 0:
                self._append(features[:free])
                features = features[free:]
            self._reduce()
            free = self.max_candidates - self.rows
        if len(features):
            self._append(features)

    def _append(self, features: torch.Tensor) -> None:
        self.chunks.append(features.float())
        self.rows += len(features)
        self.peak_rows = max(self.peak_rows, self.rows)

    def _reduce(self) -> None:
        """Replace the buffer by its greedy coreset of ``target`` rows."""
        buffer = torch.cat(self.chunks)  # (rows, D)
        keep = greedy_coreset(buffer, self.target, projection_dim=self.projection_dim,
                              seed=self.seed + self.reductions, progress=self.progress)
        self.chunks, self.rows = [buffer[keep]], len(keep)
        self.reductions += 1

    def finish(self) -> torch.Tensor:
        """The memory bank: ``(min(target, rows seen), D)`` float32."""
        if not self.chunks:
            raise InputError("the memory bank got no features: the train split is empty")
        if self.rows > self.target:
            self._reduce()
        return torch.cat(self.chunks)
