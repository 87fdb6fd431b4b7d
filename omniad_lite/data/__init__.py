"""Datasets for omniad_lite: MVTec-AD, VisA, Real-IAD and ADer meta.json readers, the torch dataset with
its uint8 memmap cache, and the offline demo dataset.

- :func:`load_samples` → list of :class:`Sample` (``loading.py``, ``sample.py``, readers in ``formats/``)
- :class:`Preprocess`: the model's input size and normalisation (``preprocess.py``)
- :class:`AnomalyDataset` (``dataset.py``; decoding in ``images.py``; cache in ``cache.py``)
- :func:`dataset_from_config` (``factory.py``)
- :func:`make_demo_dataset`, :func:`demo_root` (``demo.py``)
- dataset checks and ADer meta.json writing for ``data_scripts/`` (``prepare.py``)
"""
from __future__ import annotations

from .cache import ImageCache, default_cache_dir
from .dataset import AnomalyDataset
from .demo import demo_root, make_demo_dataset
from .factory import dataset_from_config
from .loading import detect_format, load_samples
from .preprocess import Preprocess
from .sample import Sample

__all__ = ["load_samples", "Sample", "detect_format", "AnomalyDataset", "ImageCache", "dataset_from_config",
           "make_demo_dataset", "demo_root", "default_cache_dir", "Preprocess"]
