"""``dataset_from_config``: the one call training and evaluation use to get a dataset from a ``DataConfig``."""
from __future__ import annotations

from pathlib import Path

from .cache import default_cache_dir
from .dataset import AnomalyDataset
from .demo import demo_root
from .loading import load_samples
from .preprocess import Preprocess


def dataset_from_config(data_cfg, split: str, preprocess: Preprocess, progress: bool = True) -> AnomalyDataset:
    """Build the :class:`AnomalyDataset` of one split described by a :class:`~omniad_lite.config.DataConfig`.

    Args:
        data_cfg: ``root`` (``None``: the demo dataset, generated once under ``demo_root(cache_dir)``),
            ``format``, ``classes``, ``options``, ``cache_images``, ``cache_dir``.
        split: ``"train"`` or ``"test"``.
        preprocess: the model's input size and normalisation (``model.preprocess``).
        progress: show progress bars (demo generation is silent unless it runs; cache building).
    """
    cache_dir = Path(data_cfg.cache_dir).expanduser() if data_cfg.cache_dir else default_cache_dir()
    if data_cfg.root is None:
        if data_cfg.format not in ("auto", "mvtec"):
            raise ValueError(f"data.root is None (the demo dataset, MVTec layout) but data.format="
                             f"{data_cfg.format!r}; set data.root to your dataset folder (--data-root) or "
                             f"data.format='mvtec'")
        root, fmt = demo_root(cache_dir), "mvtec"
    else:
        root, fmt = data_cfg.root, data_cfg.format
    samples = load_samples(root, fmt, split, data_cfg.classes, **dict(data_cfg.options or {}))
    return AnomalyDataset(samples, preprocess, cache_dir=cache_dir if data_cfg.cache_images else None,
                          progress=progress)
