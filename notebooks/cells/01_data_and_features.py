# %% [markdown]
# # 01 · The data, the teacher's features, and how an anomaly map is made
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/01_data_and_features.ipynb)
#
# **The question:** a model that never saw a defect during training marks the defect's pixels in its anomaly
# map. How, exactly, is that map computed from the network's outputs?
#
# **What you will learn:** how the datasets are laid out and read (one `Sample` per image); what the
# multi-class setting trains on (normal images only, all classes together); what the frozen pretrained
# teacher produces at its three scales; why *reconstructing* those features exposes anomalies; and, on a
# trained model, every step from the teacher's features and their reconstructions to the anomaly map and the
# image score — written out by hand and checked against the library.
#
# **Needs from earlier notebooks:** nothing (00 is a good overview first). The last part looks at a trained
# model: the run of **00** or **03** (their default output folders, or `run_dir`); run alone, it trains the
# demo preset first (about a minute on a CPU). Runs offline on a CPU.
#
# **Guide:** [Datasets](../docs/data_formats.md) · [The method](../docs/method.md) · [The model](../docs/model.md)

# %% [parameters]
preset = "demo"          # the teacher and image size come from this preset
data_root = None         # None: the offline demo dataset; else a dataset root
num_examples = 7         # test images shown: one anomalous image per class, then normal ones
example_class = "coffee" # class of the worked example of the anomaly map (the first class when absent)
run_dir = None           # a finished run for the worked example; None: 00's or 03's default run, else train one
# -- set-up: where and how it runs (the defaults suit a local run; papermill -p sets any of them) --
output_dir = "runs/01_data_and_features"

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

import omniad_lite
from omniad_lite import viz
from omniad_lite.notebook_params import (
    check_injected_parameters,
    check_param,
    experiment_from_params,
    notebook_parameters,
    output_path,
    show_notes,
)
from omniad_lite.notebook_results import write_results
from omniad_lite.notebook_runs import check_run_dir

check_injected_parameters()  # a misspelt papermill parameter (-p num_example 3) stops here
params = notebook_parameters()  # as run (papermill's -p values included), for results.json
show_notes()  # the kit's warnings print below their cell as `note (Category): ...` lines
cfg = experiment_from_params(preset, data_root=data_root)
check_param("num_examples", num_examples, int, positive=True)
check_param("example_class", example_class, str)
check_run_dir(run_dir)
output_dir = output_path(output_dir)
omniad_lite.seed_everything(cfg.train.seed)

# %% [markdown]
# ## The datasets and their layouts
# The kit reads MVTec-AD (`<class>/train/good`, `<class>/test/<defect>`, `<class>/ground_truth/<defect>`),
# VisA (`split_csv/1cls.csv` + `Data/Images`, `Data/Masks`), Real-IAD (per-class JSON splits, five camera
# views), the ADer `meta.json` the released code uses and a plain folder of your own photos (`good/`,
# `bad/`, optional `masks/`; notebook 06). Each reader returns the same thing: a list of
# `Sample(image_path, mask_path, cls_name, defect, label)`. With `data_root = None` we use the demo dataset:
# five classes (three textures, two objects) cut from photographs that ship with scikit-image, with
# synthetic scratches, stains and patches whose masks are pixel-exact.

# %%
from omniad_lite.data import dataset_from_config, demo_root, load_samples

root = cfg.data.root or demo_root(cfg.data.cache_dir)
samples = {split: load_samples(root, cfg.data.format, split, cfg.data.classes, **cfg.data.options)
           for split in ("train", "test")}
first = samples["test"][-1]
print(f"{first.cls_name}/{first.defect} label={first.label}:", Path(first.image_path).relative_to(root),
      "mask:", Path(first.mask_path).relative_to(root))

# %%
# NBVAL_CHECK_OUTPUT
counts = pd.DataFrame([{"split": split, "class": s.cls_name, "kind": "anomalous" if s.label else "normal"}
                       for split, ss in samples.items() for s in ss])
print(counts.value_counts().unstack(["split", "kind"], fill_value=0).sort_index().to_string())

# %% [markdown]
# Training sees **only normal images**, of every class at once: one model for all classes (the
# "multi-class" or "unified" setting). The test split mixes normal and anomalous images, the latter with
# ground-truth masks.

# %%
from omniad_lite.model import model_preprocess

preprocess = model_preprocess(cfg.model)  # input size + normalisation: what the model will carry
test_set = dataset_from_config(cfg.data, "test", preprocess)
anomalous = [next(i for i, s in enumerate(test_set.samples) if s.cls_name == c and s.label == 1)
             for c in test_set.class_names]
normal = [next(i for i, s in enumerate(test_set.samples) if s.cls_name == c and s.label == 0)
          for c in test_set.class_names]
picks = (anomalous + normal)[:num_examples]
item = test_set[picks[0]]
print({k: tuple(v.shape) if hasattr(v, "shape") else v for k, v in item.items() if k != "path"})

# %%
fig, axes = plt.subplots(2, len(picks), figsize=(2.2 * len(picks), 4.6), squeeze=False, gridspec_kw={"hspace": 0.12})
for col, i in enumerate(picks):
    image, mask = test_set.raw(i)  # uint8 (S, S, 3), (S, S)
    axes[0, col].imshow(image)
    axes[0, col].set_title(f"{test_set.samples[i].cls_name} · {test_set.samples[i].defect}", fontsize=9)
    axes[1, col].imshow(mask, cmap="gray", vmin=0, vmax=1)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("test image", fontsize=9)
axes[1, 0].set_ylabel("ground-truth mask\n(white = defect)", fontsize=9)
defect_share = pd.Series({f"{test_set.samples[i].cls_name} · {test_set.samples[i].defect}":
                          100 * float(test_set.raw(i)[1].mean()) for i in picks}, name="defect pixels (%)")
print(defect_share.round(1).to_string())

# %% [markdown]
# Top row: one anomalous test image per class, then normal ones (`good`); bottom row: their ground-truth
# masks. A normal image's mask is all black. The defects cover a few percent of the image at most (printed
# above): a pixel-level metric is judged on very few positive pixels (notebook 04).

# %% [markdown]
# ## The frozen teacher
# A timm backbone with `features_only=True` returns the feature maps of three stages (strides 4, 8, 16).
# Its weights never change: it defines *what normal looks like* in feature space. Its normalisation
# mean/std default to the encoder's timm `pretrained_cfg`, not to a hard-coded ImageNet constant.

# %%
from omniad_lite.model.encoder import FrozenEncoder

encoder = FrozenEncoder(cfg.model.encoder, cfg.model.encoder_weights, cfg.model.out_indices)

# %%
# NBVAL_CHECK_OUTPUT
print("teacher:", encoder.name)
print("channels per scale:", encoder.channels, " strides:", encoder.reductions)
print("input size, mean/std:", preprocess.image_size, preprocess.mean, preprocess.std)
print(f"parameters: {sum(p.numel() for p in encoder.parameters()):,} (trainable: "
      f"{sum(p.numel() for p in encoder.parameters() if p.requires_grad)})")

# %%
# NBVAL_CHECK_OUTPUT
images = torch.stack([test_set[i]["image"] for i in picks])  # (N, 3, S, S)
features = encoder(images)  # three (N, C_i, S/r_i, S/r_i)
print("images", tuple(images.shape))
for k, f in enumerate(features, 1):
    print(f"scale {k}:", tuple(f.shape))

# %% [markdown]
# ### What the three scales look like
# A feature map has tens to hundreds of channels per position; to look at it we project the channels of
# each scale on their first three principal components (computed per image and scale) and show them as red,
# green and blue. Similar colours = similar feature vectors.

# %%
for col, i in enumerate(picks[:3]):
    fig = viz.feature_pca_figure([f[col] for f in features], viz.to_display_image(test_set.raw(i)[0]),
                                   [f"scale {k}: {f.shape[1]} channels × {f.shape[2]}²"
                                    for k, f in enumerate(features, 1)])

# %% [markdown]
# Read each row from left to right. At stride 4 the pictures still follow the brick wall's mortar lines, the
# rim of the cup and every coin; at stride 16 an 8 × 8 grid is left, each position describing a whole
# region. The brick's patch (top left) already has colours of its own at scale 1: the teacher's features do
# *see* the defect. What the rest of the model must supply is the knowledge that it is not normal.
#
# ## Why reconstructing the features exposes anomalies
# Omni-AD trains a decoder to rebuild the teacher's features of *normal* images. On a defect, the
# decoder produces what a normal image would have there, so teacher and reconstruction disagree exactly
# where the image is abnormal. The crudest possible "reconstruction" already shows the idea: the mean
# feature map of a few normal training images. We score it with the library's anomaly map
# (1 − cosine similarity per scale, upsampled, averaged, blurred).

# %%
from omniad_lite.model.anomaly_map import anomaly_map, image_scores

train_set = dataset_from_config(cfg.data, "train", preprocess)
normal_batch = torch.stack([train_set[i]["image"] for i in range(0, len(train_set), max(1, len(train_set) // 32))])
mean_normal = [f.mean(dim=0, keepdim=True) for f in encoder(normal_batch)]  # three (1, C_i, h_i, w_i)
crude = [m.expand_as(f) for m, f in zip(mean_normal, features)]  # same "reconstruction" for every image
maps = anomaly_map(features, crude, cfg.model.image_size)  # (N, S, S)
scores = image_scores(maps)  # (N,)
print("maps", tuple(maps.shape), "scores", [round(float(s), 3) for s in scores])

# %%
raw = [test_set.raw(i) for i in picks]
fig = viz.heatmap_gallery([viz.to_display_image(img) for img, _ in raw], maps, [m for _, m in raw],
                            [f"{test_set.samples[i].cls_name} · {test_set.samples[i].defect}: {float(s):.2f}"
                             for i, s in zip(picks, scores)])

# %% [markdown]
# Columns: the test images above, the class and the image score (the map's maximum) in the title; rows: the
# image, its mask, the map over the image (one colour scale for all). The mean feature map cannot follow the
# normal variation of position and lighting, so it lights up on normal structure too: the normal images'
# scores fall inside the range of the anomalous ones (printed and checked below) — no threshold separates
# them. A decoder that reconstructs *each image's own*
# normal appearance keeps the signal on the defect and removes the rest — that is what we look at next.

# %%
crude_normal = [float(s) for i, s in zip(picks, scores) if test_set.samples[i].label == 0]
crude_anomalous = [float(s) for i, s in zip(picks, scores) if test_set.samples[i].label == 1]
print(f"crude reconstruction, image scores: anomalous {min(crude_anomalous):.3f}–{max(crude_anomalous):.3f}, "
      f"normal {min(crude_normal, default=float('nan')):.3f}–{max(crude_normal, default=float('nan')):.3f}")
if crude_normal and crude_anomalous:  # num_examples may leave out the normal images
    assert max(crude_normal) > min(crude_anomalous), "the crude reconstruction's scores overlap"

# %% [markdown]
# ## How a map is made, step by step, on a trained model
# ![The Omni-AD pipeline: frozen encoder, neck, Omni-block decoder, per-scale maps](../docs/images/pipeline.png)
#
# *The pipeline (drawn by `docs/images/make_diagrams.py`; on Colab, where the repository's files are not next
# to the notebook, [open the picture on GitHub](https://github.com/{REPO}/blob/main/docs/images/pipeline.png)).*
# The frozen teacher turns the image into three feature maps $f_1, f_2, f_3$; the trained part (neck and
# Omni-block decoder, notebook 02) returns reconstructions $\hat f_1, \hat f_2, \hat f_3$ of the same
# shapes. Everything after that is a fixed formula, which we now compute by hand on one anomalous test image
# of a trained demo model, and check against the library.

# %%
from IPython.display import Markdown, display

from omniad_lite.notebook_runs import quality_note, trained_run

trained_dir = trained_run(run_dir, ["runs/00_quickstart/run", "runs/03_training/run"], output_dir / "demo_run")
display(Markdown(quality_note(trained_dir)))
run = omniad_lite.load_run(trained_dir)
model = run.model.eval()  # eval mode: no feature jitter (notebook 02)
run_set = dataset_from_config(run.config.data, "test", model.preprocess)
cls = example_class if example_class in run_set.class_names else run_set.class_names[0]
examples = {kind: next(i for i, s in enumerate(run_set.samples) if s.cls_name == cls and s.label == label)
            for kind, label in (("anomalous", 1), ("normal", 0))}
batch = torch.stack([run_set[i]["image"] for i in examples.values()])  # (2, 3, S, S): anomalous, normal
with torch.no_grad():
    teacher, recon = model(batch)  # two lists of three (2, C_i, S/r_i, S/r_i)
for k, (f, r) in enumerate(zip(teacher, recon), 1):
    print(f"scale {k}: teacher {tuple(f.shape)}  reconstruction {tuple(r.shape)}")
print("examples:", {k: f"{run_set.samples[i].cls_name} · {run_set.samples[i].defect}" for k, i in examples.items()})

# %% [markdown]
# ### Step 1 · one distance map per scale
# At every position $(x, y)$ of scale $i$, compare the teacher's feature vector with its reconstruction by
# the cosine of the angle between them:
#
# $$d_i(x, y) = 1 - \frac{\langle f_i(x, y),\, \hat f_i(x, y) \rangle}{\lVert f_i(x, y) \rVert\,
#   \lVert \hat f_i(x, y) \rVert} \in [0, 2].$$
#
# $d_i = 0$ where the reconstruction points the same way as the teacher's feature, whatever its length.

# %%
import torch.nn.functional as F

distances = [1 - F.cosine_similarity(f, r, dim=1) for f, r in zip(teacher, recon)]  # three (2, h_i, w_i)
vmax_distance = max(float(d.max()) for d in distances)  # one colour scale for both images
scale_titles = [f"scale {k}: {f.shape[1]} ch × {f.shape[2]}²" for k, f in enumerate(teacher, 1)]
fig = viz.reconstruction_figure([f[0] for f in teacher], [r[0] for r in recon], [d[0] for d in distances],
                                scale_titles, vmax=vmax_distance)


# %% [markdown]
# Rows: the teacher's features, their reconstruction — both projected on **one** PCA basis per scale, so the
# same colour means the same feature — and $d_i$ on one colour scale for the three scales. Away from the
# defect the two pictures look alike and $d_i$ is dark; on the defect the reconstruction continues the
# normal surroundings and $d_i$ lights up. At the finest scale the reconstruction is smoother than the
# teacher (fine texture is the hardest to regenerate), so $d_1$ is the noisiest map, with a few isolated
# bright positions. The check below measures what the eye sees: the mean of $d_i$ on the defect's positions
# against the rest of the image (weighted by each position's share of defect pixels).

# %%
from omniad_lite.notebook_runs import is_short_schedule

mask = torch.from_numpy(run_set.raw(examples["anomalous"])[1]).float()[None, None]  # (1, 1, S, S)
rows = []
for k, d in enumerate(distances, 1):
    share = F.interpolate(mask, size=d.shape[-2:], mode="area")[0, 0]  # (h_k, w_k): defect share of each position
    rows.append({"scale": k, "mean d on the defect": float((d[0] * share).sum() / share.sum()),
                 "mean d elsewhere": float((d[0] * (1 - share)).sum() / (1 - share).sum())})
on_defect = pd.DataFrame(rows).set_index("scale")  # means weighted by each position's share of defect pixels
on_defect["ratio"] = on_defect["mean d on the defect"] / on_defect["mean d elsewhere"]
print(on_defect.round(3).to_string())
full_run = not is_short_schedule(run.config)
if full_run:  # a smoke run (few steps) has not learnt normal appearance yet: nothing to assert
    assert (on_defect["ratio"] > 1).all(), "a trained model's distance is higher on the defect at every scale"

# %% [markdown]
# ### Step 2 · upsample, average, blur; the image score is the maximum
# The three maps have different sizes; each is upsampled bilinearly to the input size $S$ and the three are
# averaged, then smoothed by a Gaussian of $\sigma = 4$ pixels, which removes single-pixel noise and joins a
# defect's neighbouring peaks:
#
# $$M = G_{\sigma = 4} * \frac{1}{3} \sum_{i=1}^{3} \operatorname{up}_S(d_i), \qquad
#   s = \max_{x, y} M(x, y).$$
#
# The blur below is `scipy.ndimage.gaussian_filter`, as in the released code; the library reproduces it in
# torch. The hand-made map must equal the library's (`omniad_lite.evaluation.inference.iter_maps`, the one
# path that `evaluate`, `predict` and the CLI use) to within **1e-5** (float32 round-off).

# %%
import numpy as np
from scipy.ndimage import gaussian_filter

from omniad_lite.evaluation.inference import iter_maps
from omniad_lite.model.anomaly_map import BLUR_SIGMA

S = model.preprocess.image_size
upsampled = [F.interpolate(d[:, None], size=(S, S), mode="bilinear", align_corners=True)[:, 0]
             for d in distances]  # three (2, S, S)
mean_map = torch.stack(upsampled).mean(dim=0).numpy()  # (2, S, S)
hand_maps = np.stack([gaussian_filter(m, sigma=BLUR_SIGMA) for m in mean_map])  # (2, S, S)
hand_scores = hand_maps.reshape(2, -1).max(axis=1)  # (2,)
_, library_maps, library_scores = next(iter_maps(model, [batch], device="cpu"))
map_difference = float(np.abs(hand_maps - library_maps).max())
print(f"largest |hand − library| over both maps: {map_difference:.1e}")
print("image scores, hand:", np.round(hand_scores, 4), " library:", np.round(library_scores, 4))
assert map_difference < 1e-5 and np.allclose(hand_scores, library_scores, atol=1e-5)

# %%
image_a, mask_a = run_set.raw(examples["anomalous"])  # uint8 (S, S, 3), (S, S)
vmax_map = float(max(mean_map.max(), hand_maps.max()))  # one colour scale for both images
fig = viz.map_assembly_figure(viz.to_display_image(image_a), mean_map[0], hand_maps[0], mask_a, vmax=vmax_map,
                              title=f"anomalous: {cls} · {run_set.samples[examples['anomalous']].defect}")

# %% [markdown]
# From left to right: the input with the defect's outline (white), the mean of the three upsampled maps,
# its blur (the magenta cross marks the maximum, the image score) and the map over the image. The check below
# reads the figure: where is the maximum, and how much of the blurred map's mass lies on the defect?

# %%
peak = np.unravel_index(int(hand_maps[0].argmax()), hand_maps[0].shape)
near_defect = gaussian_filter(mask_a.astype(float), sigma=BLUR_SIGMA) > 0.01  # the outline, widened by the blur
print(f"maximum {hand_maps[0].max():.3f} at (row, col) = {tuple(int(p) for p in peak)}: "
      f"{'on' if mask_a[peak] else 'off'} the defect, {'within' if near_defect[peak] else 'outside'} a blur radius")
if full_run:
    assert near_defect[peak], "a trained model's maximum lies on (or within a blur radius of) the defect"

# %% [markdown]
# ### The same for a normal image
# Same class, same colour scales. There is no defect to find: the reconstruction should match the teacher
# everywhere and the map stay low.

# %%
image_n, mask_n = run_set.raw(examples["normal"])
fig = viz.reconstruction_figure([f[1] for f in teacher], [r[1] for r in recon], [d[1] for d in distances],
                                scale_titles, vmax=vmax_distance)
fig = viz.map_assembly_figure(viz.to_display_image(image_n), mean_map[1], hand_maps[1], None, vmax=vmax_map,
                              title=f"normal: {cls} · good")

# %%
peak_n = np.unravel_index(int(hand_maps[1].argmax()), hand_maps[1].shape)
border = min(peak_n[0], peak_n[1], S - 1 - peak_n[0], S - 1 - peak_n[1])
print(f"image score: anomalous {hand_scores[0]:.3f}, normal {hand_scores[1]:.3f} "
      f"(ratio {hand_scores[0] / hand_scores[1]:.1f})")
print(f"normal image: maximum at (row, col) = {tuple(int(p) for p in peak_n)}, {border} px from the border")
if full_run:
    assert hand_scores[0] > hand_scores[1], "the anomalous image scores higher than the normal one"

# %% [markdown]
# The normal image's teacher and reconstruction pictures agree everywhere, its maps stay darker on the same colour
# scales, and its score is lower (printed above): a threshold between the two scores separates these two
# images (notebook 04 measures how well one threshold does over the whole test set). The normal map is not
# zero, though: its maximum (the cross; position printed above) sits where the decoder's reconstruction is
# least faithful — in this run near the image border, where the finest scale's isolated bright positions are.
# Those residues of normal images set how low a threshold can go.
#
# ### Training minimises something else: the loss is not the score
# The decoder is trained on normal images only, with the mean squared error per scale, summed:
#
# $$\mathcal L = \sum_{i=1}^{3} \frac{1}{C_i H_i W_i} \sum_{c, x, y}
#   \big(f_i(c, x, y) - \hat f_i(c, x, y)\big)^2 .$$
#
# The loss asks for the right *vector* (length and direction); the score only looks at the *direction*
# ($1 - \cos$ ignores the length). So a reconstruction that is right up to a factor costs loss but no score.
# The cell checks both claims: the library's loss equals the formula, and doubling the reconstruction
# changes the loss but not the map.

# %%
from omniad_lite.model.anomaly_map import anomaly_map
from omniad_lite.model.loss import reconstruction_loss

normal_f, normal_r = [f[1:] for f in teacher], [r[1:] for r in recon]  # the normal image only
hand_loss = sum(float(((f - r) ** 2).sum()) / f[0].numel() for f, r in zip(normal_f, normal_r))
loss = float(reconstruction_loss(normal_f, normal_r))
doubled = [2 * r for r in normal_r]
print(f"loss on the normal image: library {loss:.4f}, formula {hand_loss:.4f}")
print(f"with the reconstruction doubled: loss {float(reconstruction_loss(normal_f, doubled)):.4f}")
same_map = torch.allclose(anomaly_map(normal_f, normal_r, S), anomaly_map(normal_f, doubled, S), atol=1e-6)
print("anomaly map unchanged by the doubling:", same_map)
assert abs(loss - hand_loss) < 1e-4 * max(1.0, hand_loss) and same_map

# %%
extra = {"teacher": encoder.name, "channels": encoder.channels,
         "strides": encoder.reductions, "feature_shapes": [list(f.shape[1:]) for f in features],
         "counts": {split: len(ss) for split, ss in samples.items()},
         "crude_scores": {f"{test_set.samples[i].cls_name}/{test_set.samples[i].defect}/{i}": float(s)
                          for i, s in zip(picks, scores)},
         "trained_run": str(trained_dir), "example": {k: run_set.samples[i].image_path for k, i in examples.items()},
         "hand_vs_library_max_abs_diff": map_difference,
         "image_scores": {"anomalous": float(hand_scores[0]), "normal": float(hand_scores[1])},
         "distance_on_defect": on_defect.to_dict(orient="index")}
path = write_results(output_dir, "01_data_and_features", params, config=cfg, run_dir=trained_dir, extra=extra)
print(f"wrote {path}")

# %% [markdown]
# ## Summary
# - All dataset formats become one list of `Sample`s; training uses normal images of all classes at once.
# - The frozen teacher turns an image into three feature maps (strides 4, 8, 16); their channel counts come
#   from timm's `feature_info`, their normalisation from timm's `pretrained_cfg`.
# - The anomaly map is $1 - \cos$ between teacher features and reconstruction per scale, upsampled,
#   averaged and blurred ($\sigma = 4$); the image score is its maximum. Written out by hand above, it equals
#   the library's map to within 1e-5.
# - Training minimises the summed per-scale MSE on normal images; the score ignores feature lengths.
# - Next: **02** opens the box between teacher and reconstruction — the neck, the feature jitter and the
#   Omni-block ([the model guide](../docs/model.md)).
#
# ## Exercises
# 1. **How much does the blur matter?** Recompute the anomalous and the normal image's maps with
#    $\sigma = 0$ (no blur), 2, 4 and 8, and compare the two image scores. Which $\sigma$ separates them best
#    here, and why can a very small $\sigma$ hurt the score of a normal image?
# 2. **Which scale sees the defect?** Build the map from one scale at a time (the mean over one map) and
#    measure, on the anomalous image, how well each ranks defect pixels above normal ones (pixel AUROC with
#    `sklearn.metrics.roc_auc_score`).
# 3. **Another class.** Run the worked example with `example_class="brick"` (a texture) — or change the
#    class in the solution below — and compare its maps with the coffee cup's.

# %%
# Solution 1: the image scores for several blur widths (sigma 0 = no blur)
for sigma in (0, 2, 4, 8):
    blurred = [gaussian_filter(m, sigma=sigma) if sigma else m for m in mean_map]
    a, n = (float(b.max()) for b in blurred)
    print(f"sigma {sigma}: anomalous {a:.3f}  normal {n:.3f}  ratio {a / n:.2f}")

# %%
# Solution 2: pixel AUROC of each scale's map alone on the anomalous image, then of the mean of the three
from sklearn.metrics import roc_auc_score

truth = mask_a.ravel() > 0
per_scale_auroc = {f"scale {k}": roc_auc_score(truth, u[0].numpy().ravel()) for k, u in enumerate(upsampled, 1)}
per_scale_auroc["mean of 3, blurred"] = roc_auc_score(truth, hand_maps[0].ravel())
print({k: round(100 * v, 1) for k, v in per_scale_auroc.items()})

# %%
# Solution 3: the map of another class's first anomalous image (change other_class and look)
other_class = "brick" if "brick" in run_set.class_names else run_set.class_names[-1]
j = next(i for i, s in enumerate(run_set.samples) if s.cls_name == other_class and s.label == 1)
_, other_map, other_score = next(iter_maps(model, [run_set[j]["image"][None]], device="cpu"))
other_image, other_mask = run_set.raw(j)
fig = viz.heatmap_gallery([viz.to_display_image(other_image)], other_map, [other_mask],
                          [f"{other_class} · {run_set.samples[j].defect}, score {float(other_score[0]):.3f}"])

# %% [markdown]
# ## References
# - Omni-AD: J. Quan, A. Tong, Y. Cai, X. He, Y. Wang, Y. Zhou, "Omni-AD: Learning to Reconstruct Global and
#   Local Features for Multi-class Anomaly Detection", ICME 2025, [arXiv 2503.21125](https://arxiv.org/abs/2503.21125);
#   code: [github.com/easyoo/Omni-AD](https://github.com/easyoo/Omni-AD).
# - UniAD (the multi-class setting, feature reconstruction, feature jitter): Z. You et al., "A Unified Model
#   for Multi-class Anomaly Detection", NeurIPS 2022, [arXiv 2206.03687](https://arxiv.org/abs/2206.03687).
# - MambaAD (the neck and the map recipe Omni-AD inherits): H. He et al., "MambaAD: Exploring State Space
#   Models for Multi-class Unsupervised Anomaly Detection", NeurIPS 2024,
#   [arXiv 2404.06564](https://arxiv.org/abs/2404.06564).
# - ADer (the benchmark code the released scoring comes from): J. Zhang et al., "A Comprehensive Library for
#   Benchmarking Multi-class Visual Anomaly Detection", [arXiv 2406.03262](https://arxiv.org/abs/2406.03262).
# - Datasets: P. Bergmann et al., "MVTec AD — A Comprehensive Real-World Dataset for Unsupervised Anomaly
#   Detection", CVPR 2019; Y. Zou et al., "SPot-the-Difference Self-Supervised Pre-training for Anomaly
#   Detection and Segmentation" (VisA), ECCV 2022, [arXiv 2207.14315](https://arxiv.org/abs/2207.14315);
#   C. Wang et al., "Real-IAD: A Real-World Multi-View Dataset for Benchmarking Versatile Industrial Anomaly
#   Detection", CVPR 2024, [arXiv 2403.12580](https://arxiv.org/abs/2403.12580).
