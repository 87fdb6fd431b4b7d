# %% [markdown]
# # 03 · Training: from the demo to the paper runs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/03_training.ipynb)
#
# **What you will learn:** how a training run is configured (preset + parameters → one `ExperimentConfig`),
# what the engine does (the released recipe), how to watch the loss live, and what a run directory holds.
# The defaults train the `demo` preset with its full schedule (about a minute on a CPU; the model it
# writes is the one notebook 04 evaluates); the paper runs are the same notebook with a parameter file:
#
# ```
# papermill 03_training.ipynb runs/mvtec.ipynb -f params/mvtec.yaml -p data_root /data/mvtec_ad
# ```
#
# **Needs from earlier notebooks:** nothing to run; 02 explains the model being trained. Notebook 04
# (and 02) read the run directory this one writes (`output_dir/run`).
#
# **Guide:** [Training](../docs/training.md) · [Configs](../docs/configs.md) · [On Colab](../docs/install.md)

# %% [parameters]
preset = "demo"                  # "demo", "paper-mvtec", "paper-visa", "paper-realiad"
data_root = None                 # None: the offline demo dataset; else the dataset root
classes = None                   # None: every class found; else a list, e.g. ["bottle", "cable"]
epochs = None                    # passes over the train split; None: the preset's (demo 30; paper 1000, Real-IAD 100)
iterations = None                # optimiser steps instead of epochs; None: use epochs
batch_size = 16                  # released: 16 (the learning rate scales with it)
device = "auto"                  # "auto" (GPU when available), "cpu", "cuda", "cuda:1"
precision = None                 # None: the preset's (fp32, as released); "bf16", "fp16" (GPU), "auto"
cache_images = True              # decode + resize every image once into a uint8 memmap cache
cache_teacher_features = None    # None: the preset's; "off", "memory", "disk": teacher features computed once
overrides = []                   # any other config key (format: see the next text cell)
live_every_s = 5.0               # redraw the live loss curve at most this often (seconds)
output_dir = "runs/03_training"  # the run directory is output_dir/run
resume = "auto"                  # "auto": continue the run in output_dir from its last checkpoint; False: start over
drive = False                    # Colab: True keeps output_dir and the caches on Google Drive (survives disconnects)
drive_folder = "/content/drive/MyDrive/omniad_lite"  # where on Drive (a relative output_dir goes inside)
data_archive = None              # a dataset archive → local disk → data_root; docs/install.md (Colab)

# %% [markdown]
# ## The configuration
# Every parameter above maps to one config key; `overrides` reaches any other, as `"section.key=value"`
# strings (values parsed as JSON): `["model.ffn=resampled", "train.lr=5e-4", "model.decoder_depths=[2,6,6,4]"]`.
# The config is checked here:
# an unknown preset, an unknown key or a value of the wrong type stops with a one-line message.

# %%
import json

import pandas as pd
from IPython.display import Markdown, display

import omniad_lite
from omniad_lite import presets, viz
from omniad_lite.notebook_params import check_injected_parameters, check_param, experiment_from_params, output_path
from omniad_lite.notebook_runs import DEMO_QUALITY, config_table, quality_note

check_injected_parameters()  # a misspelt papermill parameter (-p epoch 5) stops here
cfg = experiment_from_params(preset, overrides, data_root=data_root, classes=classes, epochs=epochs,
                             iterations=iterations, batch_size=batch_size, device=device, precision=precision,
                             cache_images=cache_images, cache_teacher_features=cache_teacher_features)
check_param("live_every_s", live_every_s, (int, float), positive=True)
output_dir = output_path(output_dir)
run_dir = output_dir / "run"
omniad_lite.seed_everything(cfg.train.seed)
pd.set_option("display.width", 100)
flat = pd.json_normalize(cfg.to_dict()).iloc[0].to_dict()  # dotted keys → plain values
print("changed from the preset:", {k: flat[k] for k in cfg.diff(presets.get(preset))})

# %% [markdown]
# The settings that matter (the full resolved config is written to `config.json` in the run directory):

# %%
config_table(cfg)

# %% [markdown]
# ## Train, watching the loss
# `omniad_lite.train` calls `callback(step, model)` after every optimiser step; `LiveLossPlot` redraws the
# curve from the run's `history.csv` every few seconds (in a notebook; it does nothing in a script). The
# run is resumable: with `resume="auto"` (the default here) running this notebook again continues an
# interrupted run from its last checkpoint, exactly; `resume=False` starts over.

# %%
from omniad_lite.viz.widgets import LiveLossPlot

live = LiveLossPlot(run_dir, every_s=live_every_s)
result = omniad_lite.train(cfg, run_dir, resume=resume, overwrite=not resume, callback=live)
live()  # the final curve: logged loss, its moving average and the learning rate
print(f"{result.steps} steps in {result.train_time_s:.1f} s")
display(Markdown(quality_note(run_dir)))

# %% [markdown]
# ## The run directory
# `config.json` (the resolved config and the library versions), `history.csv` (step, epoch, loss, lr,
# images/s), `model.safetensors` (all weights, teacher included: the run loads offline), `checkpoints/step-N/`
# (weights + `train_state.pt` with the optimiser, scheduler and RNG state for an exact resume, and a
# `manifest.json` of their hashes), `metrics.json`/`metrics.csv` and `thresholds.json` (decision thresholds).

# %%
# NBVAL_CHECK_OUTPUT
print(", ".join(sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))))

# %%
table = result.metrics
viz.readable(table)

# %%
# NBVAL_CHECK_OUTPUT
print(f"mean image AUROC ≥ {DEMO_QUALITY:.0f} (demo quality):", bool(table.loc["mean", "image_auroc"] >= DEMO_QUALITY))

# %%
metrics = json.loads((run_dir / "metrics.json").read_text())
print("headline:", metrics["headline"], "| protocol:", metrics["protocol"],
      f"| train {metrics['train_time_s']} s, eval {metrics['eval_time_s']} s")

# %%
results = {"notebook": "03_training", "preset": preset, "config": cfg.to_dict(), "run_dir": str(run_dir),
           "steps": result.steps, "train_time_s": round(result.train_time_s, 1),
           "mean": table.loc["mean"].to_dict()}
(output_dir / "results.json").write_text(json.dumps(results, indent=2))
print(f"wrote {output_dir / 'results.json'}")

# %% [markdown]
# ## Summary
# - A run = preset + parameters; the resolved config is saved with the weights, so a run can always be
#   reloaded (`omniad_lite.load_run`) and compared (`cfg.diff`).
# - The paper runs differ only in parameters: `params/mvtec.yaml`, `params/visa.yaml`,
#   `params/realiad.yaml` (1000/1000/100 epochs, batch 16, resnet34 at 256²) with `papermill -f`.
# - Speed knobs: `cache_images` (no change to the result), `cache_teacher_features` (fp16-rounded teacher
#   features, a change of about 5e-4 relative); `precision`
#   (`bf16`, `fp16`) trades a little numerical accuracy for speed.
#   Next: **04** evaluates this run in depth.
