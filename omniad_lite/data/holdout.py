"""The held-out normal images: a seeded share of each class's training images kept out of training.

Training never sees them; after training their image scores calibrate the decision thresholds
(:mod:`omniad_lite.evaluation.calibration`). The draw is per class, from the class's images in path order,
with ``numpy.random.default_rng(seed)``, so it depends only on the file list, the fraction and the seed
(``DataConfig.val_fraction``, ``DataConfig.val_seed``, both saved in the run's ``config.json``). Ours: the
released Omni-AD code trains on every normal image and has no thresholds.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..errors import DataError
from .sample import Sample

MIN_HELDOUT = 2  # per class when holding out at all: a median and a maximum need two scores


def heldout_count(n: int, fraction: float) -> int:
    """Images of a class of ``n`` held out at ``fraction``: ``round(fraction·n)``, at least ``MIN_HELDOUT`` when
    ``fraction > 0``."""
    return 0 if fraction <= 0 else max(MIN_HELDOUT, int(round(fraction * n)))


def split_heldout(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split training samples into ``(kept for training, held out)``, both in the input order.

    Args:
        samples: a train split (normal images), e.g. from :func:`~omniad_lite.data.load_samples`.
        fraction: share of each class held out, in ``[0, 1)``.
        seed: seed of the draw.

    Raises:
        ValueError: a class would keep no training image.
    """
    if not 0 <= fraction < 1:
        raise DataError(f"val_fraction={fraction!r} must be in [0, 1)")
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_class[s.cls_name].append(i)
    rng = np.random.default_rng(seed)
    held: set[int] = set()
    for cls in sorted(by_class):
        idx = sorted(by_class[cls], key=lambda i: samples[i].image_path)
        k = heldout_count(len(idx), fraction)
        if k >= len(idx) and k > 0:
            raise DataError(f"class {cls!r} has {len(idx)} normal training image(s): holding {k} out for the "
                             f"threshold leaves none to train on; add images or set data.val_fraction=0")
        held.update(idx[j] for j in rng.permutation(len(idx))[:k])
    return ([s for i, s in enumerate(samples) if i not in held], [s for i, s in enumerate(samples) if i in held])
