# %% [markdown]
# # 04 · Evaluation: what the seven numbers mean, and how far to trust them
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/04_evaluation.ipynb)
#
# The demo run reports a pixel AUROC near 99 but a pixel AP near 50, and image AUROCs from 89 to 100 on
# classes with 25 test images each. **Which number says how good the model is, why do they disagree, and how
# much would they move on another test set?**
#
# **What you will learn:** the seven metrics of the papers (image AUROC, AP, F1-max; pixel AUROC, AP,
# F1-max, AU-PRO) and their mean mAD, each as an equation and computed on this run; why AP sits far below
# AUROC when defects cover a few percent of the pixels; AU-PRO on a worked example and why it stops at a
# false-positive rate of 0.3; confidence intervals by a bootstrap over the test images; the kit's and the
# released code's protocol; chosen failure cases per class, read; and what published numbers to expect.
#
# **Needs from earlier notebooks:** a finished run — 03's or 00's default run (or `run_dir`). Run alone, this
# notebook first trains the demo preset itself (about a minute and a half on a CPU).
#
# **Guide:** [Evaluation and the two protocols](../docs/evaluation.md)

# %% [parameters]
run_dir = None                         # a finished run; None: 03's or 00's default run, else train the demo
num_resamples = 2000                   # bootstrap redraws of the test images per class
example_class = "coffee"               # the class whose pixels section 2 examines (the first class when absent)
# -- set-up: where and how it runs (the defaults suit a local run; papermill -p sets any of them) --
data_root = None                       # None: the dataset recorded in the run; else another root
device = "auto"                        # "auto" (GPU when available), "cpu", "cuda"
batch_size = 16                        # images per forward pass while evaluating
output_dir = "runs/04_evaluation"

# %%

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import omniad_lite
from omniad_lite import viz
from omniad_lite.notebook_params import (
    check_folder,
    check_injected_parameters,
    check_param,
    notebook_parameters,
    output_path,
    show_notes,
)
from omniad_lite.notebook_results import metrics_record, write_results
from omniad_lite.notebook_runs import DEMO_QUALITY, check_run_dir, quality_note, trained_run

check_injected_parameters()  # a misspelt papermill parameter (-p num_resample 2) stops here
params = notebook_parameters()  # as run (papermill's -p values included), for results.json
show_notes()  # the kit's warnings print below their cell as `note (Category): ...` lines
check_run_dir(run_dir)
data_root = None if data_root is None else str(check_folder("data_root", data_root))
check_param("batch_size", batch_size, int, positive=True)
check_param("num_resamples", num_resamples, int, positive=True)
check_param("example_class", example_class, str)
output_dir = output_path(output_dir)
omniad_lite.seed_everything(0)
pd.set_option("display.width", 100)

# %% [markdown]
# ## Load the run and evaluate it
# `load_run` rebuilds the model from `config.json` and `model.safetensors`; `evaluate` runs the test split
# once and returns the per-class table, the per-image scores and (with `keep_maps=True`) every anomaly map.

# %%
from omniad_lite.evaluation.evaluator import evaluate, test_dataset
from omniad_lite.run import RunDir

run_dir = trained_run(run_dir, ["runs/03_training/run", "runs/00_quickstart/run"], output_dir / "demo_run",
                      device=device)
run = omniad_lite.load_run(run_dir)
cfg, model = run.config, run.model
if data_root is not None:
    cfg = cfg.with_overrides({"data.root": data_root})
display(Markdown(quality_note(run_dir)))
test_set = test_dataset(cfg, model.preprocess, progress=False)  # the run's test split, as the model expects
result = evaluate(model, test_set, batch_size=batch_size, device=device, protocol="kit", keep_maps=True,
                  progress=False)
per_image = result.per_image
names, labels, scores = (per_image[c].to_numpy() for c in ("cls_name", "label", "score"))
maps, masks = result.maps, result.masks.astype(bool)  # (N, S, S) float16 and bool, in dataset order
kit = result.table
viz.readable(kit)

# %%
# NBVAL_CHECK_OUTPUT
recorded = RunDir(run_dir).read_metrics()["final"]["mean"]
print("the same numbers as the run's metrics.json (03):",
      data_root is not None or all(abs(kit.loc["mean", k] - v) < 1e-9 for k, v in recorded.items()))
print(f"mean image AUROC ≥ {DEMO_QUALITY:.0f} (demo quality):", bool(kit.loc["mean", "image_auroc"] >= DEMO_QUALITY))

# %% [markdown]
# ## 1. The metrics, defined
# Each metric is computed **per class** and then averaged over the classes (the `mean` row). With image
# scores $s$ (the maximum of the anomaly map) and labels (anomalous = positive):
#
# - **AUROC**, the area under the ROC curve, is the probability that a random anomalous sample scores above a
#   random normal one (ties count ½): $\text{AUROC} = P(s^+ > s^-) + \tfrac12 P(s^+ = s^-)$.
# - **AP**, average precision, averages the precision over the recall levels:
#   $\text{AP} = \sum_k (R_k - R_{k-1})\, P_k$ over the thresholds in decreasing order, with precision
#   $P = \frac{TP}{TP + FP}$ and recall $R = \frac{TP}{TP + FN}$.
# - **F1-max** is the best F1 over all thresholds, $\max_t \frac{2 P(t) R(t)}{P(t) + R(t)}$ — the threshold is
#   chosen on the test labels, so it is an optimistic number.
#
# The **pixel** versions treat every pixel of every test image of the class as one sample (map value vs mask).
# **AU-PRO** (section 3) weights defect *regions* equally; **mAD** is the mean of the seven.

# %% [markdown]
# ## 2. AUROC and AP under imbalance
# AUROC divides the false positives by the number of **normal** pixels, AP by the number of **flagged**
# pixels. When defects cover a few percent of the pixels, a false-positive rate that AUROC barely notices
# is still many normal pixels per defect pixel. The pixels of one class (`example_class`), as the table
# computes them, and its own fraction of defect pixels:

# %%
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from omniad_lite.viz.metric_plots import interval_figure, pro_example_figure, roc_pr_figure

cls = example_class if example_class in test_set.class_names else test_set.class_names[0]
of_cls = names == cls
pixel_labels, pixel_scores = masks[of_cls].ravel(), maps[of_cls].ravel().astype(np.float32)  # (N·S·S,)
prevalence = pixel_labels.mean()
print(f"{cls}: {pixel_labels.size:,} test pixels, {100 * prevalence:.2f} % of them defects "
      f"(all classes: {100 * masks.mean():.2f} %)")
fpr, tpr, roc_thresholds = roc_curve(pixel_labels, pixel_scores)
precision, recall, pr_thresholds = precision_recall_curve(pixel_labels, pixel_scores)
at = np.searchsorted(tpr, 0.8)  # the first threshold that finds 80 % of the defect pixels
threshold80 = roc_thresholds[at]
flagged = pixel_scores >= threshold80
precision80 = (flagged & pixel_labels).sum() / flagged.sum()
print(f"{cls}: pixel AUROC {100 * roc_auc_score(pixel_labels, pixel_scores):.1f}, "
      f"pixel AP {100 * average_precision_score(pixel_labels, pixel_scores):.1f} (from the stored maps)")
print(f"at recall {100 * tpr[at]:.0f} %: FPR {100 * fpr[at]:.2f} % of the normal pixels = "
      f"{fpr[at] * (1 - prevalence) / (tpr[at] * prevalence):.2f} false per found defect pixel → precision "
      f"{100 * precision80:.0f} %")
fig = roc_pr_figure(fpr, tpr, recall, precision, prevalence, point=(fpr[at], tpr[at], precision80))

# %% [markdown]
# The same threshold is one point on both curves. On the ROC curve it sits near the top-left corner; on the
# precision-recall curve it is far from the top, because precision is
#
# $$P = \frac{\pi R}{\pi R + (1 - \pi)\,\text{FPR}},$$
#
# with $\pi$ the fraction of defect pixels: a small $\pi$ multiplies the weight of every false positive. A
# random score has AUROC 0.5 whatever $\pi$, but AP equal to $\pi$ — AP's floor moves with the imbalance,
# AUROC's does not. Two checks on this run's pixels:

# %%
# NBVAL_CHECK_OUTPUT
random_scores = np.random.default_rng(0).random(pixel_labels.size)
print("precision from the formula = counted:",
      bool(np.isclose(prevalence * tpr[at] / (prevalence * tpr[at] + (1 - prevalence) * fpr[at]), precision80)))
print("a random score: AUROC ≈ 0.5 and AP ≈ the defect fraction:",
      abs(roc_auc_score(pixel_labels, random_scores) - 0.5) < 0.005,
      abs(average_precision_score(pixel_labels, random_scores) - prevalence) < 0.005)

# %% [markdown]
# ## 3. AU-PRO, worked out on a toy map
# Pixel AUROC and AP count pixels, so a large defect outweighs a small one: a model that finds only the large
# scratches looks good. The **per-region overlap** (Bergmann et al., 2020; the MVTec AD evaluation) gives
# every connected defect region the same weight. At a threshold $t$, with regions $C_1, \dots, C_K$
# (8-connected components of the masks of all test images) and the normal pixels $\mathcal N$:
#
# $$\text{PRO}(t) = \frac1K \sum_{k=1}^{K} \frac{|\{p \in C_k : s_p \ge t\}|}{|C_k|}, \qquad
# \text{FPR}(t) = \frac{|\{p \in \mathcal N : s_p \ge t\}|}{|\mathcal N|}, \qquad
# \text{AU-PRO} = \frac{1}{0.3} \int_0^{0.3} \text{PRO} \; d\,\text{FPR}.$$
#
# **Why 0.3.** Bergmann et al. integrate the curve only up to a false-positive rate of 30 % and divide by 0.3
# (so a perfect map scores 1): beyond that, so many normal pixels are flagged that a segmentation is of no
# practical use, and that part of the curve would otherwise dominate the area. The limit is a convention
# from the MVTec AD papers that later work, Omni-AD included, keeps so that numbers stay comparable.
#
# A toy map by hand: one image, a 12-pixel region that scores high and a 2-pixel region that scores like
# the background.

# %%
from scipy import ndimage

from omniad_lite.evaluation.curve_metrics import AUPRO_FPR_LIMIT, PixelSets

toy_mask = np.zeros((8, 8), bool)
toy_mask[1:4, 1:5] = True  # region 1: 12 pixels
toy_mask[6, 5:7] = True    # region 2: 2 pixels
rng = np.random.default_rng(1)
toy_scores = rng.uniform(0.0, 0.6, (8, 8))        # normal texture
toy_scores[1:4, 1:5] = rng.uniform(0.7, 1.0, (3, 4))  # the large defect stands out
toy_scores[6, 5:7] = [0.25, 0.3]                  # the small one scores like the background
regions, num_regions = ndimage.label(toy_mask, structure=np.ones((3, 3)))
curve = [(0.0, 0.0)]
for t in np.unique(toy_scores)[::-1]:  # every distinct score is a threshold, highest first
    pro = np.mean([(toy_scores[regions == k] >= t).mean() for k in range(1, num_regions + 1)])
    curve.append(((toy_scores[~toy_mask] >= t).mean(), pro))
curve_fpr, curve_pro = np.array(curve).T
inside = curve_fpr <= AUPRO_FPR_LIMIT
cut_pro = np.interp(AUPRO_FPR_LIMIT, curve_fpr, curve_pro)  # the curve interpolated at the limit
x, y = np.r_[curve_fpr[inside], AUPRO_FPR_LIMIT], np.r_[curve_pro[inside], cut_pro]
aupro_by_hand = np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / AUPRO_FPR_LIMIT  # trapezoids
t_big = toy_scores[regions == 1].min()
found = toy_scores >= t_big  # the threshold that just catches all of region 1
print(f"at t = {t_big:.2f}: pixel recall {found[toy_mask].mean():.2f}, PRO "
      f"{np.mean([found[regions == k].mean() for k in (1, 2)]):.2f}, FPR {found[~toy_mask].mean():.2f}")
print(f"AU-PRO by hand {aupro_by_hand:.4f}, library {PixelSets(toy_scores[None], toy_mask[None]).kit_aupro():.4f}")
fig = pro_example_figure(toy_scores, regions, curve_fpr, curve_pro, AUPRO_FPR_LIMIT)

# %%
# NBVAL_CHECK_OUTPUT
print("hand-computed AU-PRO = the library's:",
      bool(np.isclose(aupro_by_hand, PixelSets(toy_scores[None], toy_mask[None]).kit_aupro(), rtol=1e-9)))

# %% [markdown]
# At the threshold that catches all of region 1, 12 of the 14 defect pixels are found (pixel recall 0.86)
# but only one of the two defects (PRO 0.50): pixel metrics reward the large defect, PRO asks for both. The
# curve rises in two steps — region 1 early, region 2 only once a large share of the normal pixels is
# flagged — and the area stops at FPR 0.3.

# %% [markdown]
# ## 4. How uncertain are the per-class numbers?
# Each demo class has 10 normal and 15 anomalous test images, so its image AUROC is a count over 150 pairs:
# it moves in steps of $100/150 \approx 0.67$ points, and one image can move it by several. A **bootstrap**
# estimates how much the number would change on another test set of the same size: redraw the test images
# with replacement (normal and anomalous separately, so each redraw keeps 10 + 15), recompute the metric,
# repeat, and report the middle 95 % of the redrawn values. `omniad_lite.evaluation.bootstrap` does it
# (`bootstrap_ci` for any statistic, `image_metric_cis` per class).

# %%
from omniad_lite.evaluation.bootstrap import image_metric_cis

cis = image_metric_cis(per_image, ["image_auroc", "image_ap"], n_resamples=num_resamples)
fig = interval_figure(cis, "image_auroc")
cis.round(1)

# %%
# NBVAL_CHECK_OUTPUT
auroc_rows = cis.xs("image_auroc", level="metric")
width = auroc_rows["high"] - auroc_rows["low"]
perfect = auroc_rows["estimate"] == 100
print("point estimates = the table's image AUROC:",
      bool(np.allclose(auroc_rows["estimate"], kit.loc[auroc_rows.index, "image_auroc"], atol=0.051)))
print("zero width at 100, wider than one AUROC step below it:",
      bool((width[perfect] == 0).all() and (width[~perfect] > 100 / 150).all()))

# %% [markdown]
# A class at 100 has an interval of zero width — every redraw is still perfectly separated, which says only
# that no test image contradicts it, not that the model is perfect. The classes below 100 have intervals
# several points wide: two of them can differ by less than that for no reason but which images happen to be
# in the test set. Compare variants (notebook 05) by differences larger than these intervals, or over seeds.

# %% [markdown]
# ## 5. Why a number here can differ from 03's by 0.1 — and two protocols
# The table above is computed inside `evaluate` from float32 maps; it is exactly the run's `metrics.json`
# (checked above). `evaluate(..., keep_maps=True)` *stores* the maps as float16 to halve their memory.
# Metrics recomputed from those stored maps tie pixels whose float32 scores differ, which moves the pixel
# metrics by up to about a tenth of a point — enough to change a rounded last digit now and then (a run whose
# pixel AP is 51.55 can print 51.6 in 03 and 51.5 here). This run, class by class and unrounded:

# %%
from omniad_lite.evaluation.metric_tables import metrics_table
from omniad_lite.evaluation.metrics import compute_metrics


def table_from_stored_maps(protocol: str) -> pd.DataFrame:
    """Every metric per class from the stored (float16) maps under ``protocol``."""
    return metrics_table({c: compute_metrics(scores[names == c], labels[names == c], maps[names == c],
                                             masks[names == c], protocol) for c in test_set.class_names},
                         protocol=protocol)


from_float16 = table_from_stored_maps("kit")
pixel = ["pixel_auroc", "pixel_ap", "pixel_aupro"]
stored = {c: compute_metrics(scores[names == c], labels[names == c], maps[names == c], masks[names == c])
          for c in test_set.class_names}  # unrounded fractions from the float16 maps
shift = pd.DataFrame({c: {m: 100 * (stored[c][m] - result.per_class[c][m]) for m in pixel} for c in stored}).T
print(f"largest shift: {shift.abs().max().max():.3f} points")
shift.rename(columns=viz.table_display.SHORT_NAMES).round(3).rename_axis("float16 − float32 (points)")

# %%
# NBVAL_CHECK_OUTPUT
image_cols = ["image_auroc", "image_ap", "image_f1max"]
print("image metrics identical (the scores are not stored as float16):",
      bool((from_float16[image_cols] == kit[image_cols]).all().all()))
print("pixel metrics within 0.2 points:", bool((shift.abs() <= 0.2).all().all()))

# %% [markdown]
# The **released** protocol replays the released code's evaluation: pixel F1-max over 21 thresholds of a
# min-max-normalised map, AU-PRO over 100 thresholds with the FPR axis rescaled; the other five metrics are
# the same. Same stored maps, two rulers — any difference below is the protocol, not the model:

# %%
released = table_from_stored_maps("released")
differ = ["pixel_f1max", "pixel_aupro"]
both = pd.concat({"kit": from_float16[differ], "released": released[differ]}, axis=1).swaplevel(axis=1)
viz.readable(both[[(m, p) for m in differ for p in ("kit", "released")]])

# %%
# NBVAL_CHECK_OUTPUT
same = ["image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap"]
print("identical under both protocols:", bool((from_float16[same] == released[same]).all().all()))

# %% [markdown]
# ## 6. What to expect on the benchmarks
# **Omni-AD's own table numbers are not shipped with the kit.** The kit records only published numbers it has
# checked against their papers (`omniad_lite.evaluation.reference_results`: a missing number is NaN, never
# estimated), and the Omni-AD paper's tables (arXiv 2503.21125) are not among them; the kit's paper presets
# have not been run to completion on the benchmarks here either, so there is no measured reproduction to print
# beside them. The table below therefore holds the numbers the paper says it **beats**, from the peers' own
# papers (multi-class setting, 256² input): MambaAD (He et al., NeurIPS 2024) with all seven metrics, InvAD
# and ViTAD (Zhang et al.) with their mAD. The rows "MVTec-AD 100ep (ADer)" are the yardstick of a 100-epoch run
# such as the Colab-sized preset `paper-mvtec-100`: the peers re-run for 100 epochs in one code base by ADer
# (Zhang et al., arXiv 2406.03262; compare the seven metrics, ADer's mAD is not their mean; see
# [the install guide](../docs/install.md)). The last row is this run — on **different data** (unless you
# evaluated a real benchmark): the demo set is small and easy, so its numbers show the table's shape, not a
# comparison.

# %%
label = f"{cfg.name} run" + ("" if cfg.data.root is None else f" ({cfg.data.format})")
expect = viz.expectation_table({label: kit.loc["mean"]})
if cfg.data.root is not None:  # a benchmark run: file it under its data set instead of "other data"
    expect = expect.rename(index={viz.table_display.OTHER_DATA: f"{cfg.data.format} (this run)"})
expect

# %% [markdown]
# ## 7. Failure cases, chosen per class
# A gallery of the globally best or worst images shows the easiest class four times. Per class instead:
# the **clearest detection** (highest-scored anomalous image), the **weakest detection** (lowest-scored
# anomalous image) and the **strongest false alarm** (highest-scored normal image). One colour scale for all
# panels; white: the ground truth; green: the pixels above the pixel threshold with the best F1 over all test
# pixels (the F1-max threshold of section 1, over the pixels of all classes together).

# %%
from pathlib import Path

from omniad_lite.viz.cases import case_grid, pick_cases

all_p, all_r, all_t = precision_recall_curve(masks.ravel(), maps.ravel().astype(np.float32))
f1 = 2 * all_p * all_r / np.maximum(all_p + all_r, 1e-12)
pixel_threshold = float(all_t[np.argmax(f1[:-1])])
cases = pick_cases(per_image)
used = sorted(set(cases.to_numpy().ravel()))
images = {i: viz.to_display_image(test_set.raw(i)[0]) for i in used}
defect = [Path(p).parent.name for p in per_image["path"]]  # test/<defect type>/<file>
titles = [f"{defect[i]} · score {scores[i]:.2f}" for i in range(len(scores))]
fig = case_grid(cases, images, maps, masks, titles, threshold=pixel_threshold)
fig.savefig(output_dir / "cases.png", dpi=100, bbox_inches="tight")

# %%
short = {"clearest detection": "clearest", "weakest detection": "weakest", "strongest false alarm": "false alarm"}
summary = pd.DataFrame({short[kind]: [f"{defect[i]} {scores[i]:.2f}" for i in cases[kind]] for kind in cases.columns},
                       index=cases.index)
summary["false alarm / weakest"] = [
    f"{scores[cases.loc[c, 'strongest false alarm']] / scores[cases.loc[c, 'weakest detection']]:.2f}"
    for c in cases.index]
print(f"pixel threshold (F1-max over all test pixels): {pixel_threshold:.3f}")
summary

# %% [markdown]
# How to read it. Where the ratio in the last column is above 1, the class's strongest false alarm scores
# above its weakest detection, so no image threshold separates the two — these are exactly the classes with
# an image AUROC below 100 (checked below). The printed rows of this run:
#
# - **coins, the missed scratch.** The scratch is a thin curve between the coins. Its map barely rises: the
#   highest value inside the scratch equals the highest outside (next cell), below the strongest normal coins
#   image. A defect a few pixels wide covers little of a feature cell (4 to 16 pixels wide at 128 px input,
#   scale by scale) and is smoothed further by the map's blur (σ = 4): thin defects are the hardest here.
# - **brick, the normal false alarm.** The highest-scored normal brick image is hot along its left border,
#   where the frame cuts the brick pattern; it outscores the weakest brick defect (a faint stain whose map
#   peaks outside the stain). Normal variation the decoder reconstructs badly is as costly as a missed defect.
# - **gravel** behaves like brick (a faint stain below a normal image's hot spot); **coffee** and **grass**
#   separate all their images, but their weakest detections (a missing part, a patch) score only just above
#   their normal images — a small change of the data could reverse them. Grass's weakest patch is flagged
#   for the wrong reason: its map peaks *outside* the patch (next cell: 0.62 outside, 0.60 inside). The
#   cell reads the float16 maps stored with the run, so its maxima can differ from the table's float32
#   scores in the second decimal.

# %%
# NBVAL_CHECK_OUTPUT
overlap = summary["false alarm / weakest"].astype(float) > 1
print("ratio above 1 exactly where image AUROC < 100:",
      bool((overlap == (kit.loc[summary.index, "image_auroc"] < 100)).all()))

# %%
for cls in cases.index:
    i = int(cases.loc[cls, "weakest detection"])
    peak = np.unravel_index(np.argmax(maps[i]), maps[i].shape)
    inside = float(maps[i][masks[i]].max()) if masks[i].any() else float("nan")
    print(f"{cls:7s} weakest ({defect[i]}): map peak {'inside' if masks[i][peak] else 'outside'} the defect; "
          f"max inside {inside:.2f}, max outside {float(maps[i][~masks[i]].max()):.2f}")

# %% [markdown]
# ## 8. Explore
# Pick a class, an image and a threshold: the green outline is `map ≥ threshold`, the white one the ground
# truth. In JupyterLab with a running kernel this is a live widget; a stored notebook (this one was executed
# by papermill) shows, below it, a static view — the two highest-scored images of each class at the
# F1-max pixel threshold, printed in its title.

# %%
from omniad_lite.viz.widgets import ExplorerData, explorer

view = explorer(ExplorerData.from_eval(result, test_set), threshold=pixel_threshold)
display(view)

# %%
extra = {"num_images": len(test_set), "defect_pixel_fraction": float(prevalence), "pixel_threshold": pixel_threshold,
         "kit_from_stored_maps": metrics_record(from_float16), "released": metrics_record(released, "released"),
         "image_auroc_ci": {c: [r.low, r.high] for c, r in auroc_rows.iterrows()},
         "figures": [str(output_dir / "cases.png")]}
path = write_results(output_dir, "04_evaluation", params, config=cfg, run_dir=run_dir, metrics=kit, extra=extra)
print(f"wrote {path}")

# %% [markdown]
# ## Summary
# - AUROC asks "is a defect ranked above a normal sample?", AP "of what I flag, how much is defect?". With
#   defects on a few percent of the pixels, AP is far below AUROC for the same map — the formula
#   $P = \pi R / (\pi R + (1-\pi)\,\text{FPR})$ says why; AP's floor is the defect fraction.
# - AU-PRO weights every defect region equally and stops at FPR 0.3 (Bergmann et al.'s convention).
# - With 25 test images per class, per-class numbers carry intervals several points wide; differences below
#   them are noise.
# - A number recomputed from stored float16 maps can differ from `metrics.json` in the last digit; the
#   released protocol differs in pixel F1-max and AU-PRO only.
# - Next: **05** compares model variants. Guide: [docs/evaluation.md](../docs/evaluation.md).
#
# ## Exercises
# 1. **Imbalance.** Keep only the anomalous test images of `example_class` (drop its normal ones) and
#    recompute its pixel AP: the defect fraction rises — what happens to AP, and to AUROC?
# 2. **Fewer test images.** Redo the bootstrap for the image AUROC with only 5 normal images per class: how
#    much wider do the intervals get? (Watch a class whose width *falls*: which normal images did the
#    first five leave out?)
# 3. **The FPR limit.** Compute the toy map's AU-PRO with the limit at 0.05 and at 1.0 (`aupro_from_levels`
#    takes `limit`; or cut the hand-made curve): which limit rewards finding region 2?

# %%
# Solution 1
keep = np.repeat(labels[of_cls] == 1, masks[0].size)  # the pixels of the class's anomalous images
print(f"anomalous images only: defect fraction {100 * pixel_labels[keep].mean():.1f} %, "
      f"AP {100 * average_precision_score(pixel_labels[keep], pixel_scores[keep]):.1f}, "
      f"AUROC {100 * roc_auc_score(pixel_labels[keep], pixel_scores[keep]):.1f}")

# %%
# Solution 2
fewer = pd.concat([g[g.label == 1].head(99) for _, g in per_image.groupby("cls_name")]
                  + [g[g.label == 0].head(5) for _, g in per_image.groupby("cls_name")])
narrow = image_metric_cis(per_image, ["image_auroc"], n_resamples=500)
wide = image_metric_cis(fewer, ["image_auroc"], n_resamples=500)
print(pd.DataFrame({"width, 10 normal": narrow.high - narrow.low, "width, 5 normal": wide.high - wide.low}).round(1))

# %%
# Solution 3
def hand_aupro(limit: float) -> float:
    cut = np.interp(limit, curve_fpr, curve_pro)
    keep = curve_fpr <= limit
    x, y = np.r_[curve_fpr[keep], limit], np.r_[curve_pro[keep], cut]
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / limit)


print({f"limit {limit:g}": round(hand_aupro(limit), 3) for limit in (0.05, 0.3, 1.0)})

# %% [markdown]
# ## References
# - Omni-AD: *Omni-AD: Learning to Reconstruct Global and Local Features for Multi-class Anomaly Detection*,
#   arXiv 2503.21125 (ICME 2025).
# - Bergmann, Batzner, Fauser, Sattlegger, Steger, *The MVTec Anomaly Detection Dataset: A Comprehensive
#   Real-World Dataset for Unsupervised Anomaly Detection*, IJCV 129 (2021), doi 10.1007/s11263-020-01400-4
#   (the dataset and its evaluation, AU-PRO up to FPR 0.3); Bergmann et al., *MVTec AD*, CVPR 2019.
# - Bergmann, Fauser, Sattlegger, Steger, *Uninformed Students: Student-Teacher Anomaly Detection with
#   Discriminative Latent Embeddings*, CVPR 2020, arXiv 1911.02357 (the per-region overlap).
# - Zou et al., *SPot-the-Difference Self-Supervised Pre-training for Anomaly Detection and Segmentation*,
#   ECCV 2022, arXiv 2207.14315 (VisA); Wang et al., *Real-IAD: A Real-World Multi-View Dataset for
#   Benchmarking Versatile Industrial Anomaly Detection*, CVPR 2024, arXiv 2403.12580.
# - UniAD: You et al., NeurIPS 2022, arXiv 2206.03687; MambaAD: He et al., NeurIPS 2024, arXiv 2404.06564;
#   ADer: Zhang et al., arXiv 2406.03262 (the seven metrics and mAD as these papers report them);
#   PatchCore: Roth et al., *Towards Total Recall in Industrial Anomaly Detection*, CVPR 2022, arXiv 2106.08265.
# - Efron & Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall 1993 (the percentile interval).
