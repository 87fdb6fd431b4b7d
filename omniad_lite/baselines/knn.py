"""A training-free baseline: nearest-neighbour scoring of the teacher's patch features (PatchCore-style).

Method of PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022),
written here from the paper's description and applied to the *same frozen teacher* Omni-AD reconstructs:

1. **Locally aware patch features** (Sec. 3.1): each teacher map of the mid-level scales (``scales``; by
   default the kit's scales 1 and 2, strides 8 and 16 — PatchCore's "layer 2 and 3") is averaged over its
   ``patch_size × patch_size`` neighbourhood, the coarser map is upsampled bilinearly to the finer one's
   grid, and the two are concatenated: one ``D``-vector per patch (``D = c2 + c3``).
2. **Memory bank** (Sec. 3.2): the patch features of every training image, reduced by greedy k-center
   coreset subsampling (:mod:`.coreset`) to ``ceil(coreset_ratio · N)`` rows, at most ``coreset_size``.
3. **Scoring** (Sec. 3.3): a test patch's score is the Euclidean distance to its nearest memory-bank
   feature. Optional reweighting (``reweight=True``): the image score becomes PatchCore's
   ``s = (1 − exp‖m_test* − m*‖ / Σ_{m ∈ N_b(m*)} exp‖m_test* − m‖) · s*`` for the most anomalous patch
   ``m_test*``, its nearest bank feature ``m*`` and ``N_b(m*)``, the ``num_neighbors`` bank features
   nearest to ``m*`` (``m*`` itself included).

Where we differ, so that the comparison with Omni-AD is fair: the map goes through the kit's convention —
bilinear upsampling to the input size with ``align_corners=True`` and the Gaussian blur σ = 4
(:mod:`omniad_lite.model.anomaly_map`) — and, without reweighting, the image score is the maximum of that
map (as for Omni-AD; PatchCore takes the maximum patch distance). One memory bank serves all classes (the
multi-class setting Omni-AD is trained in). There is no channel reduction (PatchCore pools WideResNet-50's
1536 channels to 1024; the kit's teachers give 152 or 384). Facts cross-checked with anomalib's
``PatchcoreModel`` (github openvinotoolkit/anomalib); no code taken from it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.preprocess import Preprocess
from ..errors import ConfigError
from ..model import model_preprocess
from ..model.anomaly_map import BLUR_SIGMA, gaussian_blur, image_scores
from ..model.encoder import FrozenEncoder

QUERY_CHUNK_ELEMENTS = 1 << 24  # query × bank distances computed at once (64 MB of float32)


@dataclass
class KnnConfig:
    """Settings of the kNN baseline (saved as ``knn.json`` in its run directory).

    Args:
        scales: indices of the teacher's three scales to use (default 1, 2: strides 8 and 16).
        patch_size: neighbourhood averaged around each patch (PatchCore: 3; 1 disables it).
        coreset_ratio: fraction of the training patches kept in the memory bank (PatchCore reports 1 %, 10 %
            and 25 %; 1 % is the default here: the greedy selection costs ``N² · ratio`` and runs on CPUs).
        coreset_size: hard cap on the memory-bank rows: the model's memory is at most
            ``coreset_size × D`` floats whatever the dataset size.
        projection_dim: random-projection width used only to select the coreset (0: exact distances).
        max_candidates: most training patches held at once while fitting (larger sets are reduced in chunks).
        reweight: PatchCore's reweighted image score instead of the maximum of the blurred map.
        num_neighbors: ``b`` of the reweighting (PatchCore's code: 9).
        blur_sigma: σ of the Gaussian blur of the map (Omni-AD's 4; 0 disables it).
    """

    scales: tuple[int, ...] = (1, 2)
    patch_size: int = 3
    coreset_ratio: float = 0.01
    coreset_size: int = 50_000
    projection_dim: int = 128
    max_candidates: int = 500_000
    reweight: bool = False
    num_neighbors: int = 9
    blur_sigma: float = BLUR_SIGMA

    def __post_init__(self) -> None:
        self.scales = tuple(self.scales)
        ints = ("patch_size", "coreset_size", "projection_dim", "max_candidates", "num_neighbors")
        for name in ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "projection_dim" else 1):
                raise ConfigError(f"knn.{name}={value!r} must be a positive integer")
        if not isinstance(self.reweight, bool):
            raise ConfigError(f"knn.reweight={self.reweight!r} must be true or false")
        if not (isinstance(self.coreset_ratio, (int, float)) and 0 < self.coreset_ratio <= 1):
            raise ConfigError(f"knn.coreset_ratio={self.coreset_ratio!r} must be in (0, 1], e.g. 0.1")
        if not isinstance(self.blur_sigma, (int, float)) or self.blur_sigma < 0:
            raise ConfigError(f"knn.blur_sigma={self.blur_sigma!r} must be >= 0 (0: no blur)")
        if self.patch_size % 2 == 0:
            raise ConfigError(f"knn.patch_size={self.patch_size} must be odd (a centred neighbourhood), e.g. 3")
        if not self.scales or not set(self.scales) <= {0, 1, 2} or len(set(self.scales)) != len(self.scales):
            raise ConfigError(f"knn.scales={list(self.scales)} must be distinct teacher scales among 0, 1, 2")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "scales": list(self.scales)}

    @classmethod
    def from_dict(cls, d: dict) -> KnnConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise naming the valid ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown kNN setting(s) {unknown}; valid: {sorted(names)}")
        return cls(**d)

    def with_overrides(self, overrides: dict) -> KnnConfig:
        """A copy with ``{"coreset_ratio": 0.05, ...}`` applied (same checks as the constructor)."""
        return KnnConfig.from_dict({**self.to_dict(), **overrides})


def patch_embeddings(features: list[torch.Tensor], scales: tuple[int, ...], patch_size: int) -> torch.Tensor:
    """Locally aware patch features: ``(B, D, h, w)`` on the grid of the finest selected scale.

    Args:
        features: the teacher's maps, ``(B, C_i, H_i, W_i)`` each.
        scales: which maps to use.
        patch_size: side of the averaged neighbourhood (zero padding not counted in the mean).
    """
    maps = [features[i].float() for i in scales]
    if patch_size > 1:
        maps = [F.avg_pool2d(m, patch_size, stride=1, padding=patch_size // 2, count_include_pad=False) for m in maps]
    grid = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
    maps = [m if m.shape[-2:] == grid else F.interpolate(m, size=grid, mode="bilinear", align_corners=False)
            for m in maps]
    return torch.cat(maps, dim=1)  # (B, D, h, w)


def nearest_neighbours(query: torch.Tensor, bank: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances and indices of the ``k`` bank rows nearest to each query row.

    Args:
        query: ``(Q, D)``.
        bank: ``(M, D)``.
        k: neighbours per query (``<= M``).

    Returns:
        ``(Q, k)`` distances (ascending) and ``(Q, k)`` int64 indices into ``bank``.
    """
    bank_sq = (bank * bank).sum(dim=1)  # (M,)
    if torch.jit.is_tracing():  # ONNX export: one matmul over the whole (dynamic) batch, no Python-sized chunks
        sq = (query * query).sum(dim=1, keepdim=True) - 2 * query @ bank.T + bank_sq  # (Q, M)
        values, index = sq.clamp(min=0).topk(k, dim=1, largest=False)  # (Q, k)
        return values.sqrt(), index
    rows = max(1, QUERY_CHUNK_ELEMENTS // max(len(bank), 1))
    dists, idxs = [], []
    for chunk in query.split(rows):
        sq = (chunk * chunk).sum(dim=1, keepdim=True) - 2 * chunk @ bank.T + bank_sq  # (q, M)
        values, index = sq.clamp_(min=0).topk(k, dim=1, largest=False)  # (q, k)
        dists.append(values.sqrt())
        idxs.append(index)
    return torch.cat(dists), torch.cat(idxs)


def reweighted_scores(patches: torch.Tensor, patch_dist: torch.Tensor, patch_nn: torch.Tensor,
                      bank: torch.Tensor, num_neighbors: int) -> torch.Tensor:
    """PatchCore's reweighted image score for each image.

    Args:
        patches: ``(B, P, D)`` patch features of the test images.
        patch_dist: ``(B, P)`` distance of each patch to its nearest bank feature.
        patch_nn: ``(B, P)`` index of that bank feature.
        bank: ``(M, D)`` memory bank.
        num_neighbors: ``b`` (capped at ``M``).

    Returns:
        ``(B,)`` scores ``(1 − softmax(‖m_test* − N_b(m*)‖)[m*]) · s*``.
    """
    worst = patch_dist.argmax(dim=1)  # (B,): the most anomalous patch of each image
    rows = torch.arange(len(worst), device=worst.device)
    star_dist, star = patch_dist[rows, worst], patch_nn[rows, worst]  # s*, index of m*
    _, support = nearest_neighbours(bank[star], bank, k=min(num_neighbors, len(bank)))  # (B, b); m* first
    test_star = patches[rows, worst]  # (B, D)
    d = torch.linalg.vector_norm(bank[support] - test_star[:, None], dim=-1)  # (B, b)
    is_star = support == star[:, None]  # ties may put m* anywhere among equal rows
    p_star = (torch.softmax(d, dim=1) * is_star).sum(dim=1) / is_star.sum(dim=1).clamp(min=1)
    return (1 - p_star) * star_dist


class PatchKNN(nn.Module):
    """The kNN baseline as a scorer: frozen teacher + memory bank.

    ``model.score_images(images)`` (also ``model(images)``) returns ``(maps (B, S, S), scores (B,))``; the
    kit's inference path (:func:`omniad_lite.evaluation.inference.iter_maps`) calls it, so ``evaluate``,
    ``predict`` and the CLI work on it unchanged. ``memory_bank`` is a buffer: it is in the ``state_dict``
    and saved with the run.

    Args:
        encoder: the frozen teacher (:class:`~omniad_lite.model.encoder.FrozenEncoder`).
        preprocess: input size and normalisation.
        config: the :class:`KnnConfig`.
        memory_bank: ``(M, D)`` features (an empty ``(M, D)`` tensor before ``load_state_dict``).
    """

    def __init__(self, encoder: nn.Module, preprocess: Preprocess, config: KnnConfig, memory_bank: torch.Tensor):
        super().__init__()
        self.encoder, self.preprocess, self.config = encoder, preprocess, config
        self.register_buffer("memory_bank", memory_bank.float())

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` prepared images → ``(B, D, h, w)`` patch features."""
        with torch.no_grad():
            return patch_embeddings(self.encoder(images), self.config.scales, self.config.patch_size)

    def score_images(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Anomaly maps ``(B, S, S)`` (kit convention: bilinear, ``align_corners=True``, blur) and scores ``(B,)``."""
        emb = self.embed(images)
        b, d, h, w = emb.shape
        patches = emb.permute(0, 2, 3, 1).reshape(b, h * w, d)  # (B, P, D)
        dist, index = nearest_neighbours(patches.reshape(-1, d), self.memory_bank)  # (B·P, 1)
        dist, index = dist.view(b, h * w), index.view(b, h * w)
        up = F.interpolate(dist.view(b, 1, h, w), size=tuple(images.shape[-2:]), mode="bilinear",
                           align_corners=True)  # (B, 1, S, S)
        maps = gaussian_blur(up[:, 0], self.config.blur_sigma)  # (B, S, S)
        if self.config.reweight:
            return maps, reweighted_scores(patches, dist, index, self.memory_bank, self.config.num_neighbors)
        return maps, image_scores(maps)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score_images(images)


def build_knn(model_cfg, config: KnnConfig, memory_bank: torch.Tensor) -> PatchKNN:
    """A :class:`PatchKNN` with the teacher of ``model_cfg`` (weights per ``encoder_weights``)."""
    encoder = FrozenEncoder(model_cfg.encoder, model_cfg.encoder_weights, model_cfg.out_indices)
    return PatchKNN(encoder, model_preprocess(model_cfg), config, memory_bank)


def load_knn(model_cfg, config: dict, state: dict[str, torch.Tensor]) -> PatchKNN:
    """Rebuild a saved :class:`PatchKNN` from its ``knn.json`` content and ``state_dict`` (strict)."""
    cfg = KnnConfig.from_dict(config)
    blank = dataclasses.replace(model_cfg, encoder_weights=None)  # the state holds the teacher's weights
    model = build_knn(blank, cfg, torch.empty_like(state["memory_bank"]))
    model.load_state_dict(state, strict=True)
    return model.eval()
