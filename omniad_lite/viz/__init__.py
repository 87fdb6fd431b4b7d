"""Figures and widgets for the notebooks (matplotlib, ipywidgets). Everything here only draws.

- :mod:`.overlays` — anomaly maps over images, galleries, PNG overlays
- :mod:`.curves` — loss, ROC and PRO curves, per-class bars
- :mod:`.features` — PCA-to-RGB feature maps, learnable-token attention panels, branch sensitivity maps
- :mod:`.map_steps` — how an anomaly map is made: teacher vs reconstruction (shared PCA colours), per-scale maps
- :mod:`.attention` — recompute what the learnable tokens attend to and what each branch sees (for those panels)
- :mod:`.tables` — metric tables with the papers' short names; the published anchors beside a run
- :mod:`.widgets` — the ipywidgets explorer with its static fallback, the live loss plot

``from omniad_lite import viz`` gives every figure function: ``viz.heatmap_gallery(...)``.
"""
from __future__ import annotations

from .curves import loss_curve, metric_bars, pro_curve, pro_curves, roc_curves
from .features import (
                       feature_pca_figure,
                       pca_rgb,
                       sensitivity_maps,
                       token_attention_comparison,
                       token_attention_maps,
                       token_attention_overlay,
)
from .map_steps import map_assembly_figure, pca_rgb_pair, reconstruction_figure
from .overlays import heatmap_gallery, heatmap_overlay, overlay, to_display_image, to_numpy
from .tables import expectation_table, readable

__all__ = ["loss_curve", "metric_bars", "pro_curve", "pro_curves", "roc_curves", "feature_pca_figure", "pca_rgb",
           "sensitivity_maps", "token_attention_comparison", "token_attention_maps", "token_attention_overlay",
           "map_assembly_figure", "pca_rgb_pair", "reconstruction_figure", "heatmap_gallery",
           "heatmap_overlay", "overlay", "to_display_image", "to_numpy", "expectation_table", "readable"]
