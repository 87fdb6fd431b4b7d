# %% [markdown]
# # 04 · Evaluation: metrics, protocols, curves, heatmaps and an explorer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/04_evaluation.ipynb)
#
# **What you will learn:** how a run is evaluated — the per-class table under the kit's exact protocol and
# under the released code's protocol, side by side; where the published peers (MambaAD, InvAD, ViTAD)
# stand; ROC and PRO curves; the best and worst cases as heatmaps; and an interactive explorer.
#
# **Needs from earlier notebooks:** a run directory from **03** (`runs/03_training/run` by default). Run
# alone, this notebook trains a short demo run itself, so it always works top to bottom.

# %% [parameters]
run_dir = None                         # a run directory; None: 03's default run, else a short demo run
default_run = "runs/03_training/run"   # where notebook 03 writes by default (used when run_dir is None)
fallback_epochs = 3                    # epochs of the demo run trained when neither exists
data_root = None                       # None: the dataset recorded in the run; else another root
device = "auto"
batch_size = 16
num_cases = 4                          # best and worst cases shown
output_dir = "runs/04_evaluation"

# %%
import json
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import display

import omniad_lite
from omniad_lite import viz
from omniad_lite.notebook_params import check_param, experiment_from_params, output_path

check_param("run_dir", run_dir, (str, type(None)))
check_param("default_run", default_run, str)
check_param("batch_size", batch_size, int, positive=True)
check_param("num_cases", num_cases, int, positive=True)
check_param("fallback_epochs", fallback_epochs, int, positive=True)
output_dir = output_path(output_dir)
omniad_lite.seed_everything(0)
if run_dir is not None and not (Path(run_dir) / "model.safetensors").is_file():
    raise FileNotFoundError(f"run_dir={run_dir!r} holds no model.safetensors; pass a run written by notebook 03")

# %% [markdown]
# ## Load the run
# `load_run` rebuilds the model from `config.json` and `model.safetensors` (teacher weights included, so it
# works offline). Run alone, we first train a short demo run.

# %%
if run_dir is None and (Path(default_run) / "model.safetensors").is_file():
    run_dir = default_run
elif run_dir is None:
    run_dir = output_dir / "demo_run"
    print(f"no run given and none at {default_run}: training a {fallback_epochs}-epoch demo run in {run_dir}")
    omniad_lite.train(experiment_from_params("demo", epochs=fallback_epochs, device=device), run_dir,
                      overwrite=True)
run = omniad_lite.load_run(run_dir)
cfg, model = run.config, run.model
if data_root is not None:
    cfg = cfg.with_overrides({"data.root": str(data_root)})
print(f"run {run_dir}: preset {cfg.name}, teacher {cfg.model.encoder}, data {cfg.data.root or 'demo'}")

# %% [markdown]
# ## Per-class metrics under two protocols
# `evaluate` runs the test split once and returns the kit table plus every map (stored as float16). From
# those same maps we compute both protocols. The **kit** protocol is exact (every distinct score is a
# threshold; AU-PRO integrated exactly to FPR 0.3). The **released** protocol computes the pixel F1-max
# and AU-PRO the way the released code does (a coarser threshold grid on min-max normalised maps); image
# metrics, pixel AUROC and AP agree. Same maps, two rulers.

# %%
from omniad_lite.evaluation.evaluate import evaluate, test_dataset
from omniad_lite.evaluation.metrics import compute_metrics
from omniad_lite.evaluation.tables import metrics_table

test_set = test_dataset(cfg, model.preprocess)  # the run's test split, prepared as the model expects
result = evaluate(model, test_set, batch_size=batch_size, device=device, protocol="kit", keep_maps=True)
names, labels, scores = (result.per_image[c].to_numpy() for c in ("cls_name", "label", "score"))
maps, masks = result.maps, result.masks  # (N, S, S) float16 and uint8, in dataset order
kit, released = (metrics_table({c: compute_metrics(scores[names == c], labels[names == c],
                                                    maps[names == c], masks[names == c], protocol)
                                for c in test_set.class_names}, protocol=protocol)
                 for protocol in ("kit", "released"))
print(f"{len(test_set)} test images, maps {maps.shape} {maps.dtype}")

# %%
side_by_side = pd.concat({"kit": kit, "released": released}, axis=1).swaplevel(axis=1)
side_by_side = side_by_side[[(m, p) for m in kit.columns for p in ("kit", "released")]]
side_by_side

# %% [markdown]
# ### Next to the published numbers
# Class means published by the peers (multi-class, 256², their own papers; `omniad_lite.reference_results`).
# They are for the real datasets: a demo-data run is *not* comparable, it only shows the table's shape.

# %%
from omniad_lite.evaluation.reference_results import reference_table

dataset = {"mvtec": "mvtec", "visa": "visa", "realiad": "realiad"}.get(cfg.data.format, "mvtec")
label = f"omniad_lite ({cfg.name}, {'demo data' if cfg.data.root is None else dataset})"
comparison = pd.concat([reference_table(dataset), kit.loc[["mean"]].rename(index={"mean": label})])
print(f"published results on {dataset}:")
comparison

# %%
fig = viz.metric_bars(kit.drop(index="mean"), ["image_auroc", "pixel_auroc", "pixel_aupro", "pixel_ap"])

# %% [markdown]
# ## ROC and PRO curves
# Image ROC per class (from the image scores) and the PRO curve per class (per-region overlap against
# the false-positive rate on normal pixels, up to 0.3); the legends give the areas ×100.

# %%
import matplotlib.pyplot as plt

fig, (ax_roc, ax_pro) = plt.subplots(1, 2, figsize=(10, 4.5))
viz.roc_curves({c: (scores[names == c], labels[names == c]) for c in test_set.class_names},
                 ax=ax_roc)
viz.pro_curves({c: (maps[names == c], masks[names == c]) for c in test_set.class_names},
                 ax=ax_pro)
fig.savefig(output_dir / "curves.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# ## Best and worst cases
# Best: anomalous images with the highest scores. Worst: anomalous images with the lowest scores (missed
# defects) and normal images with the highest (false alarms). One colour scale for all panels.

# %%
anomalous, normal = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
best = anomalous[np.argsort(-scores[anomalous])][:num_cases]
worst = np.concatenate([anomalous[np.argsort(scores[anomalous])][: (num_cases + 1) // 2],
                        normal[np.argsort(-scores[normal])][: num_cases // 2]])
vmin, vmax = float(maps.min()), float(maps.max())


def gallery(indices, title):
    fig = viz.heatmap_gallery([viz.to_display_image(test_set.raw(i)[0]) for i in indices],
                                maps[indices].astype(np.float32), masks[indices],
                                [f"{names[i]} {'anom.' if labels[i] else 'normal'} {scores[i]:.2f}"
                                 for i in indices], vmin=vmin, vmax=vmax)
    fig.suptitle(title)
    return fig


fig = gallery(best, "best: highest-scored anomalous images")
fig.savefig(output_dir / "best.png", dpi=100, bbox_inches="tight")

# %%
fig = gallery(worst, "worst: lowest-scored anomalous and highest-scored normal images")
fig.savefig(output_dir / "worst.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# ## Explore
# Pick a class, an image and a threshold: the green outline is `map ≥ threshold`, the white one the ground
# truth. In JupyterLab this is a live widget (its last state is saved in the notebook); where widgets
# cannot render (no ipywidgets, a plain script) `explorer` returns a static gallery instead, and viewers
# without widget support (GitHub) show the PNG stored next to the widget.

# %%
from omniad_lite.viz.widgets import ExplorerData, explorer

view = explorer(ExplorerData.from_eval(result, test_set))
display(view)

# %%
results = {"notebook": "04_evaluation", "run_dir": str(run_dir), "num_images": len(test_set),
           "kit": {"mean": kit.loc["mean"].to_dict(), "per_class": kit.drop(index="mean").to_dict(orient="index")},
           "released": {"mean": released.loc["mean"].to_dict(),
                        "per_class": released.drop(index="mean").to_dict(orient="index")},
           "reference_dataset": dataset, "figures": [str(output_dir / f) for f in ("curves.png", "best.png", "worst.png")]}
(output_dir / "results.json").write_text(json.dumps(results, indent=2))
print(f"wrote {output_dir / 'results.json'}")

# %% [markdown]
# ## Summary
# - One forward pass gives every map; both protocols are computed from the same maps, so
#   any difference between the two columns is the protocol, not the model.
# - The published peers are class means on the full datasets; compare like with like (paper preset, real
#   data, final model — `metrics.json` keeps the released "best over training" numbers separately).
# - ROC/PRO curves and the best/worst galleries show *where* a model fails; the explorer lets you look
#   image by image. Next: **05** sweeps model variants with notebook 03.
