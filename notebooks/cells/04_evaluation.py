# %% [markdown]
# # 04 · Evaluation: metrics, protocols, curves, heatmaps and an explorer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/04_evaluation.ipynb)
#
# **What you will learn:** how a run is evaluated — the per-class table under the kit's exact protocol and
# under the released code's protocol; what to expect — the published multi-class numbers on MVTec-AD, VisA
# and Real-IAD; ROC and PRO curves; the best and worst cases as heatmaps; and an interactive explorer.
#
# **Needs from earlier notebooks:** a run directory from **03** or **00** (their default output folders,
# or `run_dir`). Run alone, this notebook first trains the demo preset itself (about a minute on a CPU), so
# it always works top to bottom and always looks at a trained model.
#
# **Guide:** [Evaluation and the two protocols](../docs/evaluation.md)

# %% [parameters]
run_dir = None                         # a finished run; None: 03's or 00's default run, else train the demo
data_root = None                       # None: the dataset recorded in the run; else another root
device = "auto"
batch_size = 16
num_cases = 4                          # best and worst cases shown
output_dir = "runs/04_evaluation"

# %%
import json

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import omniad_lite
from omniad_lite import viz
from omniad_lite.notebook_params import check_folder, check_injected_parameters, check_param, output_path
from omniad_lite.notebook_runs import DEMO_QUALITY, check_run_dir, quality_note, trained_run

check_injected_parameters()  # a misspelt papermill parameter (-p num_case 2) stops here
check_run_dir(run_dir)
data_root = None if data_root is None else str(check_folder("data_root", data_root))
check_param("batch_size", batch_size, int, positive=True)
check_param("num_cases", num_cases, int, positive=True)
output_dir = output_path(output_dir)
omniad_lite.seed_everything(0)
pd.set_option("display.width", 100)

# %% [markdown]
# ## Load the run
# `load_run` rebuilds the model from `config.json` and `model.safetensors` (teacher weights included, so it
# works offline). With no run to evaluate, we first train the demo preset.

# %%
run_dir = trained_run(run_dir, ["runs/03_training/run", "runs/00_quickstart/run"], output_dir / "demo_run",
                      device=device)
run = omniad_lite.load_run(run_dir)
cfg, model = run.config, run.model
if data_root is not None:
    cfg = cfg.with_overrides({"data.root": data_root})
print(f"run {run_dir}: preset {cfg.name}, teacher {cfg.model.encoder}, data {cfg.data.root or 'demo'}")
display(Markdown(quality_note(run_dir)))

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
# NBVAL_CHECK_OUTPUT
same = ["image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap"]
print("identical under both protocols:", bool((kit[same] == released[same]).all().all()))
print(f"mean image AUROC ≥ {DEMO_QUALITY:.0f} (demo quality):", bool(kit.loc["mean", "image_auroc"] >= DEMO_QUALITY))

# %%
differ = ["pixel_f1max", "pixel_aupro"]
both = pd.concat({"kit": kit[differ], "released": released[differ]}, axis=1).swaplevel(axis=1)
viz.readable(both[[(m, p) for m in differ for p in ("kit", "released")]])

# %% [markdown]
# ## What to expect
# The class means published for the multi-class setting (one model for all classes, 256² input; the
# methods' own papers: MambaAD, He et al., NeurIPS 2024; InvAD, Zhang et al., arXiv 2404.10760; ViTAD,
# Zhang et al., arXiv 2312.07495; `omniad_lite.evaluation.reference_results`; NaN where a paper gives
# only mAD). The Omni-AD paper reports beating each of them on all three data sets. The last row is this
# run — on **different data** (unless you evaluated a real benchmark): the demo set is small and easy, so its
# numbers are not comparable with the others; they show the table's shape and that the pipeline works.

# %%
label = f"{cfg.name} run" + ("" if cfg.data.root is None else f" ({cfg.data.format})")
expect = viz.expectation_table({label: kit.loc["mean"]})
if cfg.data.root is not None:  # a benchmark run: file it under its data set instead of "other data"
    expect = expect.rename(index={viz.tables.OTHER_DATA: f"{cfg.data.format} (this run)"})
expect

# %%
fig = viz.metric_bars(kit.drop(index="mean"), ["image_auroc", "pixel_auroc", "pixel_aupro", "pixel_ap"])

# %% [markdown]
# ## ROC and PRO curves
# Image ROC per class (from the image scores) and the PRO curve per class (per-region overlap against
# the false-positive rate on normal pixels, up to 0.3); the legends give the areas ×100.

# %%
import matplotlib.pyplot as plt

fig, (ax_roc, ax_pro) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
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
# truth. In JupyterLab with a running kernel this is a live widget. A stored notebook (this one was executed
# by papermill) keeps the widget's last state and, below it, a static view — the two highest-ranked images
# of each class — which GitHub and nbconvert's HTML show; outside Jupyter `explorer` returns that view alone.

# %%
from omniad_lite.viz.widgets import ExplorerData, explorer

view = explorer(ExplorerData.from_eval(result, test_set))
display(view)

# %%
results = {"notebook": "04_evaluation", "run_dir": str(run_dir), "preset": cfg.name, "num_images": len(test_set),
           "kit": {"mean": kit.loc["mean"].to_dict(), "per_class": kit.drop(index="mean").to_dict(orient="index")},
           "released": {"mean": released.loc["mean"].to_dict(),
                        "per_class": released.drop(index="mean").to_dict(orient="index")},
           "figures": [str(output_dir / f) for f in ("curves.png", "best.png", "worst.png")]}
(output_dir / "results.json").write_text(json.dumps(results, indent=2))
print(f"wrote {output_dir / 'results.json'}")

# %% [markdown]
# ## Summary
# - One forward pass gives every map; both protocols are computed from the same maps, so
#   any difference between the two columns is the protocol, not the model.
# - The published peers are class means on the full datasets; compare like with like (paper preset, real
#   data, final model — `metrics.json` keeps the released "best over training" numbers separately).
# - ROC/PRO curves and the best/worst galleries show *where* a model fails; the explorer lets you look
#   image by image. Next: **05** sweeps model variants (`omniad_lite.sweep.run_sweep`).
