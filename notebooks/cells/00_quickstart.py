# %% [markdown]
# # 00 · Quickstart: Omni-AD in a few minutes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/00_quickstart.ipynb)
#
# **What you will learn:** the whole pipeline end to end — the demo data, training the `demo` preset (one
# model for all classes), the per-class metrics table and a gallery of anomaly heatmaps.
#
# **Needs from earlier notebooks:** nothing. This is the first one. Everything runs offline on a CPU: the
# demo dataset is generated from photographs shipped with scikit-image and the teacher is the ImageNet
# EfficientNet-Lite0 whose weights come with a pip package.
#
# A full paper run is the same notebook with other parameters, e.g.
# `papermill 00_quickstart.ipynb out.ipynb -p preset paper-mvtec -p data_root /data/mvtec -p device cuda`.
#
# **Guide:** [Installing](../docs/install.md) · [Notebooks](../docs/notebooks.md) · [Training](../docs/training.md)

# %% [parameters]
preset = "demo"          # one of omniad_lite.presets.names()
data_root = None         # None: the offline demo dataset; else a dataset root (MVTec-AD, VisA, Real-IAD layout)
epochs = None            # None: the preset's value
iterations = None        # optimiser steps instead of epochs (for quick smoke runs)
device = "auto"          # "auto" (GPU when available), "cpu", "cuda"
gallery_size = 5         # heatmaps shown in the gallery (one anomalous image per class)
output_dir = "runs/00_quickstart"  # the run directory and results.json go here
resume = "auto"          # "auto": continue the run in output_dir from its last checkpoint; False: start over
drive = False            # Colab: True keeps output_dir and the caches on Google Drive (survives disconnects)
drive_folder = "/content/drive/MyDrive/omniad_lite"  # where on Drive (a relative output_dir goes inside)

# %% [markdown]
# ## Check the parameters
# The preset plus the parameters above become one `ExperimentConfig`. A misspelt papermill parameter
# (`-p epoch 5`), an unknown preset or a value of the wrong type (say `epochs="two"`) stops here with a
# one-line message that names the parameter.

# %%
import json

import pandas as pd
from IPython.display import Markdown, display

import omniad_lite
from omniad_lite import viz
from omniad_lite.notebook_params import check_injected_parameters, check_param, experiment_from_params, output_path
from omniad_lite.notebook_runs import DEMO_QUALITY, quality_note

check_injected_parameters()
cfg = experiment_from_params(preset, data_root=data_root, epochs=epochs, iterations=iterations, device=device)
check_param("gallery_size", gallery_size, int, positive=True)
output_dir = output_path(output_dir)
run_dir = output_dir / "run"
omniad_lite.seed_everything(cfg.train.seed)
pd.set_option("display.width", 100)  # tables print at most 100 characters wide
print(f"preset {cfg.name}: teacher {cfg.model.encoder}, decoder depths {cfg.model.decoder_depths}, "
      f"{cfg.model.image_size}² input, " + (f"{cfg.train.iterations} iterations" if cfg.train.iterations
                                            else f"{cfg.train.epochs} epochs"))

# %% [markdown]
# ## Train
# `omniad_lite.train` does everything: it builds the dataset (the demo one is written to the cache folder
# the first time), the frozen teacher, neck and Omni-block decoder, runs the released recipe (AdamW,
# lr drop after 80 %, gradient clipping, feature jitter) and evaluates the final model on the test split.
# The run directory it writes holds `config.json`, `history.csv`, `model.safetensors`, `checkpoints/`,
# `metrics.json` and `thresholds.json` (decision thresholds from held-out normal images).
# With the defaults this is the full demo schedule (about a minute on a laptop CPU): the model below is
# trained, not a smoke test.

# %%
result = omniad_lite.train(cfg, run_dir, resume=resume, overwrite=not resume)
print(f"{result.steps} steps in {result.train_time_s:.0f} s → {result.run_dir}")
display(Markdown(quality_note(run_dir)))

# %% [markdown]
# The loss per logged step (thin) and its moving average (thick); the dashed line is the learning rate,
# divided by 10 after 80 % of the steps as in the released recipe.

# %%
fig = viz.loss_curve(run_dir / "history.csv")

# %% [markdown]
# ## Per-class metrics
# Image-level AUROC / AP / F1-max (from the image score, the map's maximum), pixel-level AUROC / AP /
# F1-max, AU-PRO up to a false-positive rate of 0.3, and mAD, their mean — all ×100, one row per class
# and the class mean last. These are the *final* model's numbers (see notebook 04 for the protocols).

# %%
table = result.metrics
viz.readable(table)

# %%
# NBVAL_CHECK_OUTPUT
print(f"mean image AUROC ≥ {DEMO_QUALITY:.0f} (demo quality):", bool(table.loc["mean", "image_auroc"] >= DEMO_QUALITY))

# %%
fig = viz.metric_bars(table.drop(index="mean"), ["image_auroc", "pixel_auroc", "pixel_aupro"])

# %% [markdown]
# ## Heatmaps
# The anomaly map is 1 − cosine similarity between the teacher's features and their reconstruction, per
# scale, upsampled, averaged and blurred (`omniad_lite.evaluation.scoring.anomaly_map`). We show one anomalous test
# image per class: the image, its ground truth, and the map (white outline = ground truth).

# %%
import torch

from omniad_lite.data import dataset_from_config
from omniad_lite.evaluation.scoring import anomaly_map

run = omniad_lite.load_run(run_dir)  # config, model (eval mode) and run directory
model = run.model
test_set = dataset_from_config(run.config.data, "test", model.preprocess)
picks = [next(i for i, s in enumerate(test_set.samples) if s.cls_name == c and s.label == 1)
         for c in test_set.class_names][:gallery_size]
images = torch.stack([test_set[i]["image"] for i in picks])  # (N, 3, S, S)
with torch.no_grad():
    maps = anomaly_map(*model(images), model.preprocess.image_size)  # (N, S, S)
print(images.shape, "→", maps.shape)

# %%
raw = [test_set.raw(i) for i in picks]  # uint8 image (S, S, 3), mask (S, S)
fig = viz.heatmap_gallery([viz.to_display_image(img) for img, _ in raw], maps, [m for _, m in raw],
                            [f"{test_set.samples[i].cls_name}/{test_set.samples[i].defect}" for i in picks])
fig.savefig(output_dir / "heatmaps.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# ## Results for papermill users
# Everything a sweep needs, as JSON, next to the run directory.

# %%
results = {"notebook": "00_quickstart", "preset": cfg.name, "run_dir": str(run_dir), "steps": result.steps,
           "train_time_s": round(result.train_time_s, 1),
           "mean": table.loc["mean"].to_dict(),
           "per_class": {c: r.to_dict() for c, r in table.drop(index="mean").iterrows()},
           "heatmaps": str(output_dir / "heatmaps.png")}
(output_dir / "results.json").write_text(json.dumps(results, indent=2))
print(f"wrote {output_dir / 'results.json'}")

# %% [markdown]
# ## Summary
# - One call, `omniad_lite.train(cfg, run_dir)`, trains a multi-class Omni-AD model and evaluates it; the
#   run directory is self-contained (`omniad_lite.load_run(run_dir)` rebuilds the model offline).
# - The per-class table uses the kit's exact metrics on the final model; `metrics.json` also records the
#   released code's "best over training" numbers, labelled as such.
# - Next: **01** looks at the data and the teacher's features, **02** opens the Omni-block, **03** is the
#   full training notebook, **04** the evaluation, **05** the ablations, **06** your own images (no masks,
#   a decision per image, an ONNX export).
