"""Figures and widgets for the notebooks (matplotlib, ipywidgets). Everything here only draws.

- :mod:`.overlays` — anomaly maps over images, galleries, PNG overlays
- :mod:`.curves` — loss, ROC and PRO curves, per-class bars
- :mod:`.features` — PCA-to-RGB feature maps, learnable-token attention panels
- :mod:`.attention` — recompute what the learnable tokens attend to (for those panels)
- :mod:`.widgets` — the ipywidgets explorer with its static fallback, the live loss plot

``from omniad_lite import viz`` gives every figure function: ``viz.heatmap_gallery(...)``.
"""
from __future__ import annotations

from .curves import loss_curve, metric_bars, pro_curve, pro_curves, roc_curves
from .features import feature_pca_figure, pca_rgb, token_attention_maps
from .overlays import heatmap_gallery, heatmap_overlay, overlay, to_display_image, to_numpy

__all__ = ["loss_curve", "metric_bars", "pro_curve", "pro_curves", "roc_curves", "feature_pca_figure", "pca_rgb",
           "token_attention_maps", "heatmap_gallery", "heatmap_overlay", "overlay", "to_display_image", "to_numpy"]
