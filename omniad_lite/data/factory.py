"""``dataset_from_config``: the one call training and evaluation use to get a dataset from a ``DataConfig``."""
from __future__ import annotations

from pathlib import Path

from .cache import default_cache_dir
from .dataset import AnomalyDataset
from .demo import demo_root
from .holdout import split_heldout
from .loading import FORMATS, load_samples, resolve_format
from .preprocess import Preprocess
from .sample import Sample

# "train" is what the model trains on, "val" the held-out normal images that calibrate the thresholds
CONFIG_SPLITS = ("train", "val", "test")


def samples_from_config(data_cfg, split: str) -> list[Sample]:
    """The samples of ``split`` (``"train"``, ``"val"`` or ``"test"``) described by a ``DataConfig``.

    ``"train"`` and ``"val"`` divide the dataset's train split: ``data.val_fraction`` of each class's
    images, drawn with ``data.val_seed``, are ``"val"`` (:func:`~omniad_lite.data.holdout.split_heldout`).
    A format that ships its own normal validation images (MVTec AD 2's ``validation/``) serves them as
    ``"val"`` instead, and ``"train"`` is its whole train split (``data.val_fraction`` is not used).
    """
    if split not in CONFIG_SPLITS:
        raise ValueError(f"split={split!r} is not one of {CONFIG_SPLITS}")
    cache_dir = Path(data_cfg.cache_dir).expanduser() if data_cfg.cache_dir else default_cache_dir()
    if data_cfg.root is None:
        if data_cfg.format not in ("auto", "mvtec"):
            raise ValueError(f"data.root is None (the demo dataset, MVTec layout) but data.format="
                             f"{data_cfg.format!r}; set data.root to your dataset folder (--data-root) or "
                             f"data.format='mvtec'")
        root, fmt = demo_root(cache_dir), "mvtec"
    else:
        root, fmt = data_cfg.root, data_cfg.format
    options = dict(data_cfg.options or {})
    validation = own_validation_split(root, fmt)
    if validation and split != "test":
        return load_samples(root, fmt, validation if split == "val" else "train", data_cfg.classes, **options)
    samples = load_samples(root, fmt, "test" if split == "test" else "train", data_cfg.classes, **options)
    if split == "test":
        return samples
    train, held = split_heldout(samples, data_cfg.val_fraction, data_cfg.val_seed)
    return train if split == "train" else held


def own_validation_split(root, fmt: str) -> str | None:
    """The split name of the normal validation images a dataset ships (MVTec AD 2), else ``None`` (also for a
    missing root: :func:`~omniad_lite.data.loading.load_samples` then says what is wrong)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return None
    return getattr(FORMATS[resolve_format(root, fmt)], "VALIDATION_SPLIT", None)


def has_validation(data_cfg) -> bool:
    """Whether ``data_cfg`` has a ``"val"`` split: held-out images (``val_fraction > 0``) or the dataset's own."""
    if data_cfg.val_fraction > 0:
        return True
    return data_cfg.root is not None and own_validation_split(data_cfg.root, data_cfg.format) is not None


def dataset_from_config(data_cfg, split: str, preprocess: Preprocess, progress: bool = True) -> AnomalyDataset:
    """Build the :class:`AnomalyDataset` of one split described by a :class:`~omniad_lite.config.DataConfig`.

    Args:
        data_cfg: ``root`` (``None``: the demo dataset, generated once under ``demo_root(cache_dir)``),
            ``format``, ``classes``, ``options``, ``cache_images``, ``cache_dir``, ``val_fraction``, ``val_seed``.
        split: ``"train"`` (the images trained on), ``"val"`` (the held-out normal images) or ``"test"``.
        preprocess: the model's input size and normalisation (``model.preprocess``).
        progress: show progress bars (demo generation is silent unless it runs; cache building).
    """
    cache_dir = Path(data_cfg.cache_dir).expanduser() if data_cfg.cache_dir else default_cache_dir()
    samples = samples_from_config(data_cfg, split)
    if not samples:
        raise ValueError(f"the {split!r} split is empty (data.val_fraction={data_cfg.val_fraction}); "
                         f"set data.val_fraction > 0 to hold images out for the thresholds")
    return AnomalyDataset(samples, preprocess, cache_dir=cache_dir if data_cfg.cache_images else None,
                          progress=progress)
