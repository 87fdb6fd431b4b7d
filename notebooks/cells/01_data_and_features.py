# %% [markdown]
# # 01 · The data and the frozen teacher's features
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/01_data_and_features.ipynb)
#
# **What you will learn:** how the datasets are laid out and read (one `Sample` per image); what the
# multi-class setting trains on (normal images only, all classes together); what the frozen pretrained
# teacher produces at its three scales; and why *reconstructing* those features exposes anomalies.
#
# **Needs from earlier notebooks:** nothing (00 is a good overview first). Runs offline on a CPU.
#
# **Guide:** [Datasets](../docs/data_formats.md) · [The method](../docs/method.md)

# %% [parameters]
preset = "demo"          # the teacher and image size come from this preset
data_root = None         # None: the offline demo dataset; else a dataset root
num_examples = 7         # test images shown: one anomalous image per class, then normal ones
output_dir = "runs/01_data_and_features"

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

import omniad_lite
from omniad_lite import viz
from omniad_lite.notebook_params import check_injected_parameters, check_param, experiment_from_params, output_path

check_injected_parameters()  # a misspelt papermill parameter (-p num_example 3) stops here
cfg = experiment_from_params(preset, data_root=data_root)
check_param("num_examples", num_examples, int, positive=True)
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
fig, axes = plt.subplots(2, len(picks), figsize=(2.2 * len(picks), 4.6), squeeze=False)
for col, i in enumerate(picks):
    image, mask = test_set.raw(i)  # uint8 (S, S, 3), (S, S)
    axes[0, col].imshow(image)
    axes[0, col].set_title(f"{test_set.samples[i].cls_name}/{test_set.samples[i].defect}", fontsize=8)
    axes[1, col].imshow(mask, cmap="gray", vmin=0, vmax=1)
for ax in axes.ravel():
    ax.set_axis_off()

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
# Each scale's channels projected on their first three principal components (per image), shown as RGB.
# The fine scale follows edges and texture; the coarse scale groups larger parts.

# %%
for col, i in enumerate(picks[:3]):
    fig = viz.feature_pca_figure([f[col] for f in features], viz.to_display_image(test_set.raw(i)[0]),
                                   [f"scale {k} {tuple(f.shape[1:])}" for k, f in enumerate(features, 1)])

# %% [markdown]
# ## Why reconstructing the features exposes anomalies
# Omni-AD trains a decoder to rebuild the teacher's features of *normal* images. On a defect, the
# decoder produces what a normal image would have there, so teacher and reconstruction disagree exactly
# where the image is abnormal. The crudest possible "reconstruction" already shows the idea: the mean
# feature map of a few normal training images. We score it with the library's anomaly map
# (1 − cosine similarity per scale, upsampled, averaged, blurred).

# %%
from omniad_lite.evaluation.scoring import anomaly_map, image_scores

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
                            [f"{test_set.samples[i].cls_name} {float(s):.2f}" for i, s in zip(picks, scores)])

# %% [markdown]
# The mean feature map cannot follow the normal variation of position and lighting, so it lights up on
# normal structure too. A decoder that reconstructs *each image's own* normal appearance (notebook 02, the
# Omni-block) keeps the signal on the defect and removes the rest.

# %%
results = {"notebook": "01_data_and_features", "teacher": encoder.name, "channels": encoder.channels,
           "strides": encoder.reductions, "feature_shapes": [list(f.shape[1:]) for f in features],
           "counts": {split: len(ss) for split, ss in samples.items()},
           "crude_scores": {f"{test_set.samples[i].cls_name}/{test_set.samples[i].defect}/{i}": float(s)
                            for i, s in zip(picks, scores)}}
(output_dir / "results.json").write_text(json.dumps(results, indent=2))
print(f"wrote {output_dir / 'results.json'}")

# %% [markdown]
# ## Summary
# - All dataset formats become one list of `Sample`s; training uses normal images of all classes at once.
# - The frozen teacher turns an image into three feature maps (strides 4, 8, 16); their channel counts come
#   from timm's `feature_info`, their normalisation from timm's `pretrained_cfg`.
# - An anomaly is where the features and their reconstruction disagree; the better the reconstruction of
#   *normal* content, the cleaner the map. Next: **02** builds the decoder block that does it.
