# %% [markdown]
# # 03 · Training: one optimiser step, the learning-rate schedule, and what more steps buy
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/03_training.ipynb)
#
# A training run of Omni-AD is a few hundred (demo) or a few hundred thousand (paper) repetitions of one
# optimiser step. **What exactly happens in that step, why is the learning rate what it is, and how do you
# know when the model has trained enough?**
#
# **What you will learn:**
# 1. the training objective — the reconstruction loss with feature jitter — as an equation and as code;
# 2. one optimiser step written out by hand (neck → jitter → decoder → loss → backward → clipping → AdamW
#    with the released weight-decay groups), checked against the library's step from the same state;
# 3. the learning-rate schedule of the demo and of the paper, and why the rate scales with the batch;
# 4. how to read the loss curve, and what the later steps buy, measured on weights kept during training.
#
# **Needs from earlier notebooks:** nothing to run; **02** explains the network being trained. This notebook
# trains the demo preset with its full schedule (300 steps, about a minute and a half on an idle 2-core CPU)
# into `runs/03_training/run`, the run notebook **04** evaluates. A paper run is this notebook with a
# parameter file:
#
# ```
# papermill 03_training.ipynb runs/mvtec.ipynb -f params/mvtec.yaml -p data_root /data/mvtec_ad
# ```
#
# **Guide:** [Training](../docs/training.md) · [Configs](../docs/configs.md) · [On Colab](../docs/install.md)

# %% [parameters]
preset = "demo"                  # "demo", "paper-mvtec", "paper-visa", "paper-realiad"
epochs = None                    # passes over the train split; None: the preset's (demo 30; paper 1000, Real-IAD 100)
iterations = None                # optimiser steps instead of epochs; None: use epochs
batch_size = 16                  # released: 16 (the learning rate scales with it)
data_root = None                 # None: the offline demo dataset; else the dataset root
classes = None                   # None: every class found; else a list, e.g. ["bottle", "cable"]
overrides = []                   # any other config key, as "section.key=value" strings, e.g. ["train.lr=5e-4"]
snapshot_every = 50              # keep the weights every N steps to evaluate them afterwards (section 5)
# -- set-up: where and how it runs (the defaults suit a local run; papermill -p sets any of them) --
device = "auto"                  # "auto" (GPU when available), "cpu", "cuda", "cuda:1"
precision = None                 # None: the preset's (fp32, as released); "bf16", "fp16" (GPU), "auto"
cache_images = True              # decode + resize every image once into a uint8 memmap cache
cache_teacher_features = None    # None: the preset's; "off", "memory", "disk": teacher features computed once
live_every_s = 5.0               # redraw the live loss curve at most this often (seconds)
output_dir = "runs/03_training"  # the run directory is output_dir/run
resume = "auto"                  # "auto": continue the run in output_dir from its last checkpoint; False: start over
drive = False                    # Colab: True keeps output_dir and the caches on Google Drive (survives disconnects)
drive_folder = "/content/drive/MyDrive/omniad_lite"  # where on Drive (a relative output_dir goes inside)
data_archive = None              # a dataset archive → local disk → data_root (docs/install.md, Colab)

# %% [markdown]
# ## The configuration
# The preset plus the parameters above become one `ExperimentConfig`, checked here: an unknown preset, an
# unknown key or a value of the wrong type stops with a one-line message that names the parameter.

# %%
import copy

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

import omniad_lite
from omniad_lite import presets
from omniad_lite.notebook_params import (
    check_injected_parameters,
    check_param,
    experiment_from_params,
    notebook_parameters,
    output_path,
    show_notes,
)
from omniad_lite.notebook_results import write_results
from omniad_lite.notebook_runs import config_table

check_injected_parameters()  # a misspelt papermill parameter (-p epoch 5) stops here
params = notebook_parameters()  # as run (papermill's -p values included), for results.json
show_notes()  # the kit's warnings print below their cell as `note (Category): ...` lines
cfg = experiment_from_params(preset, overrides, data_root=data_root, classes=classes, epochs=epochs,
                             iterations=iterations, batch_size=batch_size, device=device, precision=precision,
                             cache_images=cache_images, cache_teacher_features=cache_teacher_features)
check_param("live_every_s", live_every_s, (int, float), positive=True)
check_param("snapshot_every", snapshot_every, int, positive=True)
output_dir = output_path(output_dir)
pd.set_option("display.width", 100)
print("changed from the preset:", cfg.diff(presets.get(preset)) or "nothing")
config_table(cfg)

# %% [markdown]
# ## 1. The objective: reconstruct the teacher's features
# The frozen encoder gives three feature maps $F_1, F_2, F_3$ (scale $i$ has $C_i$ channels on an
# $H_i \times W_i$ grid). The neck $N$ fuses them into one small map $z = N(F_1, F_2, F_3)$; during training
# **feature jitter** (UniAD) adds Gaussian noise to every token $z_{:,h,w}$, scaled by its own norm,
#
# $$\tilde z_{:,h,w} = z_{:,h,w} + s \, \frac{\lVert z_{:,h,w} \rVert_2}{C}\, \varepsilon_{:,h,w},
# \qquad \varepsilon_{:,h,w} \sim \mathcal N(0, I_C), \quad s = 20,$$
#
# and the decoder $D$ reconstructs the three maps, $(\hat f_1, \hat f_2, \hat f_3) = D(\tilde z)$. The loss of a
# batch of $B$ images is the mean squared error per scale, summed over the scales:
#
# $$\mathcal L = \sum_{i=1}^{3} \frac{1}{B\, C_i H_i W_i} \big\lVert f_i - \hat f_i \big\rVert_2^2 .$$
#
# (The $\frac{1}{B}$ only says that the mean runs over the batch too; 01 wrote it for one image.)
#
# Its unit is that of a squared teacher activation; it measures how far the reconstruction is from the
# teacher, not how anomalous anything is (the anomaly *score* uses 1 − cosine instead; notebook 01). Below:
# one batch of the train split through the frozen teacher, and a model initialised as a run starts
# (`seed_everything(42)`, then `build_model`).

# %%
from omniad_lite.data import dataset_from_config
from omniad_lite.model import build_model, model_preprocess, reconstruction_loss
from omniad_lite.training.optim import build_optimizer

omniad_lite.seed_everything(cfg.train.seed)
model = build_model(cfg.model).train()  # train mode: jitter on, BatchNorm uses batch statistics
train_set = dataset_from_config(cfg.data, "train", model_preprocess(cfg.model), progress=False)
batch = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))[:cfg.train.batch_size]
images = torch.stack([train_set[int(i)]["image"] for i in batch])  # (B, 3, S, S), classes mixed as in training
with torch.no_grad():
    features = model.encoder(images)  # the teacher: 3 × (B, C_i, H_i, W_i)
for i, f in enumerate(features, 1):
    print(f"F_{i}: {tuple(f.shape)}  mean square {f.pow(2).mean():.3f}")

# %% [markdown]
# ## 2. One optimiser step, written out
# AdamW with the released settings: $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$, weight decay
# $\lambda = 10^{-4}$ on the weights only — parameters with two or more dimensions (convolution kernels,
# linear weights, the learnable tokens); biases and normalisation scales get none. The gradient's global
# norm is clipped to 5 first. With gradient $g$ (after clipping), step $t$ and learning rate $\eta$:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
# \theta \leftarrow \theta\,(1 - \eta\lambda) - \eta\, \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}.$$
#
# The library builds the groups with `param_groups` and the optimiser with `build_optimizer`:

# %%
optimizer = build_optimizer(cfg.train, model)
trainable = [p for p in model.parameters() if p.requires_grad]  # the frozen teacher is left out
groups = pd.DataFrame([{"group": "weights (ndim ≥ 2)" if g["weight_decay"] else "biases, norms (ndim 1)",
                        "tensors": len(g["params"]), "values": sum(p.numel() for p in g["params"]),
                        "weight decay": g["weight_decay"], "learning rate": g["lr"]}
                       for g in optimizer.param_groups]).set_index("group")
groups

# %% [markdown]
# Now the step by hand, from a saved state (weights, optimiser state, random-number state), so that the
# library's step can start from exactly the same one afterwards. The jitter is written in the order the
# library computes it; the same arithmetic in another order rounds differently, and for the biases just
# before an instance norm (their gradient is zero in exact arithmetic) Adam's division by $\sqrt{v}$ turns
# that rounding into a step of size $\eta$ — measured while writing this cell, a difference of 3·10⁻³.

# %%
start = {"weights": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict()),
         "rng": torch.get_rng_state()}
beta1, beta2 = cfg.train.betas
eps, clip_norm = cfg.train.eps, cfg.train.grad_clip

fused = model.neck(features)                                  # (B, 2·C_3, H_3/2, W_3/2)
token_norms = fused.norm(dim=1, keepdim=True) / fused.shape[1]  # (B, 1, H_3/2, W_3/2)
jittered = fused + torch.randn_like(fused) * token_norms * model.jitter_scale
reconstructions = model.decoder(jittered)                     # 3 × (B, C_i, H_i, W_i)
loss = sum(((rec - f) ** 2).mean() for f, rec in zip(features, reconstructions))
grads = torch.autograd.grad(loss, trainable)
grad_norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
clip = min(1.0, clip_norm / (float(grad_norm) + 1e-6))        # clip_grad_norm_'s factor
by_hand = {}
with torch.no_grad():
    grad_of = {id(p): g * clip for p, g in zip(trainable, grads)}
    for group in optimizer.param_groups:
        lr, decay = group["lr"], group["weight_decay"]
        for p in group["params"]:
            state, g = optimizer.state[p], grad_of[id(p)]
            t = int(state["step"]) + 1 if state else 1
            m = beta1 * (state["exp_avg"] if state else 0) + (1 - beta1) * g
            v = beta2 * (state["exp_avg_sq"] if state else 0) + (1 - beta2) * g * g
            by_hand[id(p)] = p * (1 - lr * decay) - lr * (m / (1 - beta1 ** t)) / ((v / (1 - beta2 ** t)).sqrt() + eps)
print(f"loss {loss.item():.4f}; gradient norm {grad_norm.item():.2f} > {clip_norm:g}: scaled by {clip:.3f}")

# %% [markdown]
# The library's step from the same state: `TrainStep` (the trainable forward and the loss) and
# `optimizer_step` (backward, clipping, AdamW — the fused kernel on a CPU), as the training loop calls them.

# %%
from omniad_lite.training.step import TrainStep, optimizer_step

model.load_state_dict(start["weights"])
optimizer.load_state_dict(start["optimizer"])
torch.set_rng_state(start["rng"])  # the same jitter noise
before = [p.detach().clone() for p in trainable]
library_loss = TrainStep(model, reconstruction_loss)(features=features)
optimizer_step(library_loss, optimizer, torch.amp.GradScaler("cpu", enabled=False), trainable, clip_norm)
difference = max(float((by_hand[id(p)] - p.detach()).abs().max()) for p in trainable)
moved = max(float((p.detach() - b).abs().max()) for p, b in zip(trainable, before))
print(f"loss: by hand {loss.item():.6f}, library {library_loss.item():.6f}")
print(f"largest weight change {moved:.2e}; largest difference hand vs library {difference:.1e}")

# %%
# NBVAL_CHECK_OUTPUT
TOLERANCE = 1e-6  # absolute, on weights of order 1: a few float32 roundings
print("the hand-written step equals the library's (loss exactly, weights within 1e-6):",
      library_loss.item() == loss.item() and difference <= TOLERANCE)

# %% [markdown]
# On this first step $m$ and $v$ start at zero, so $m/(1-\beta_1) = g$ and $\sqrt{v/(1-\beta_2)} = |g|$:
# each weight moves by almost exactly $\eta$ against the sign of its gradient (plus the tiny decay) — the
# "largest weight change" above is the learning rate. Adam's steps are about $\eta$ in size whatever the
# gradient's scale, which is why the learning rate, not the loss's unit, sets how fast the weights move.

# %% [markdown]
# ## 3. The learning-rate schedule
# The released recipe keeps the rate constant and divides it by 10 for the last 20 % of the epochs (no
# warm-up). With base rate $\eta_0$, batch $B$, $E$ epochs of $n = \lfloor N / B \rfloor$ steps ($N$ training
# images):
#
# $$\eta(s) = \eta_0 \,\frac{B}{16} \times \begin{cases} 1 & s < s_{\text{drop}} \\ 0.1 & s \ge s_{\text{drop}}
# \end{cases}, \qquad s_{\text{drop}} = \lfloor 0.8\, E \rfloor \cdot n .$$
#
# **Why the rate scales with the batch.** One step averages the gradients of $B$ images; a batch $k$ times
# larger takes $k$ times fewer steps per epoch with a gradient $k$ times less noisy, so the *linear scaling
# rule* (Goyal et al., 2017) multiplies the rate by $k$ to cover the same ground per epoch. The released
# configs write it as `lr = 1e-3 * batch / 16`; the kit's `scaled_lr` does the same. (For Adam the rule is a
# heuristic: its steps do not grow with the gradient; keep batch 16 to reproduce the paper.)
#
# **Why the demo uses 4·10⁻³.** `omniad_lite/presets.py` records it: tuned on the demo data, 4·10⁻³ "learns
# faster than 1e-3 in few epochs". The demo trains 300 steps, the paper's MVTec-AD run 226,000 (below):
# with 750 times fewer steps, each has to move the weights further. Exercise 2 measures the difference.

# %%
from omniad_lite.colab.runtime import PAPER_TRAIN_IMAGES
from omniad_lite.training.optim import lr_drop_step, lr_schedule, scaled_lr
from omniad_lite.viz.training import lr_schedule_figure

steps_per_epoch = len(train_set) // cfg.train.batch_size
total_steps = cfg.train.iterations or cfg.train.epochs * steps_per_epoch
paper = presets.get("paper-mvtec").train
paper_steps = PAPER_TRAIN_IMAGES["paper-mvtec"] // paper.batch_size
schedules = {f"this run ({cfg.name}, {len(train_set)} train images)": lr_schedule(cfg.train, total_steps, steps_per_epoch),
             f"paper, MVTec-AD ({PAPER_TRAIN_IMAGES['paper-mvtec']:,} images)":
             lr_schedule(paper, paper.epochs * paper_steps, paper_steps)}
fig = lr_schedule_figure(schedules)
drop = lr_drop_step(cfg.train, total_steps, steps_per_epoch)
print(f"this run: {total_steps} steps of batch {cfg.train.batch_size}, lr {scaled_lr(cfg.train):g}, "
      f"× {cfg.train.lr_drop_factor:g} from step {drop}; the paper: {paper.epochs * paper_steps:,} steps")

# %% [markdown]
# Both panels have the same shape on a log axis: one level, then a step down by a factor of 10 at 80 % of
# the run. Only the length differs — and the level: the demo's is four times the paper's.

# %% [markdown]
# ## 4. Train
# `omniad_lite.train` runs that step `total_steps` times: it batches the (cached) teacher features, logs the
# mean loss every few steps to `history.csv`, saves resumable checkpoints, and evaluates the final model.
# It calls `callback(step, model)` after every step: here `LiveLossPlot` redraws the curve while it trains,
# (in a live notebook; section 5 draws the finished curve), and every `snapshot_every` steps a copy of the
# trainable weights is kept for section 5. `resume="auto"`
# continues an interrupted run (the snapshots taken before the interruption are then missing).

# %%
from omniad_lite.notebook_runs import quality_note
from omniad_lite.viz.widgets import LiveLossPlot

run_dir = output_dir / "run"
live = LiveLossPlot(run_dir, every_s=live_every_s)
snapshots = {}  # step → trainable weights (the frozen teacher never changes)


def on_step(step: int, model: torch.nn.Module) -> None:
    live(step, model)
    if step % snapshot_every == 0:
        snapshots[step] = {k: v.detach().clone() for k, v in model.state_dict().items()
                           if not k.startswith("encoder.")}


result = omniad_lite.train(cfg, run_dir, resume=resume, overwrite=not resume, callback=on_step, progress=False)
print(f"{result.steps} steps in {result.train_time_s:.1f} s; weights kept at steps {sorted(snapshots)}")
run = omniad_lite.load_run(run_dir)
display(Markdown(quality_note(run_dir)))

# %% [markdown]
# The learning rate the run logged is the schedule of section 3, step for step (a row logged after step $s$
# shows the rate of the next step, $\eta(s)$):

# %%
# NBVAL_CHECK_OUTPUT
history = pd.read_csv(run_dir / "history.csv")
logged = history[history["step"] < total_steps]
print("logged learning rate = lr_schedule:",
      np.allclose(logged["lr"], lr_schedule(cfg.train, total_steps, steps_per_epoch)[logged["step"]], rtol=1e-9))

# %% [markdown]
# ## 5. Reading the loss curve, and what the later steps buy
# To see what the steps buy, evaluate the model at each kept step on the test split, and a freshly
# initialised one for step 0. Each evaluation is the same as the run's final one: every test image,
# per-class metrics, their class mean.

# %%
from omniad_lite.evaluation.evaluator import evaluate
from omniad_lite.run import RunDir
from omniad_lite.viz.training import training_progress_figure

omniad_lite.seed_everything(cfg.train.seed)
final_weights = copy.deepcopy(run.model.state_dict())
final_step = int(RunDir(run_dir).read_metrics()["step"])
at_step = {0: build_model(run.config.model).state_dict(), **snapshots, final_step: final_weights}
rows = {}
for s, weights in sorted(at_step.items()):
    run.model.load_state_dict(weights, strict=False)  # a snapshot holds the trainable weights only
    rows[s] = evaluate(run.model, run.config, device=device, progress=False).mean
run.model.load_state_dict(final_weights)
step_metrics = pd.DataFrame.from_dict(rows, orient="index").rename_axis("step")
shown = ["image_auroc", "pixel_auroc", "pixel_aupro", "pixel_ap"]
trained = step_metrics.drop(index=0, errors="ignore")  # step 0 (chance level) is in the table below
fig = training_progress_figure(history, trained if len(trained) else step_metrics, shown, drop_step=drop)
fig.savefig(output_dir / "loss_and_metrics.png", dpi=100, bbox_inches="tight")

# %%
from omniad_lite import viz

final_metrics = RunDir(run_dir).read_metrics()["final"]["mean"]
last = max(at_step)
viz.readable(step_metrics[shown])

# %%
# NBVAL_CHECK_OUTPUT
tail = history[history["step"] > history["step"].max() - 50]
slope = np.polyfit(tail["step"], np.log(tail["loss"]), 1)[0]  # per step, on the log scale
zero_output = sum(float(f.pow(2).mean()) for f in features)  # the loss of a decoder that outputs zeros
print("the last kept step's evaluation = the run's final metrics:",
      all(abs(step_metrics.loc[last, k] - final_metrics[k]) < 0.051 for k in shown))
print("the last 50 steps still lower the loss:", slope < 0)

# %%
first, final = history["loss"].iloc[0], history["loss"].iloc[-1]
print(f"loss: {first:.1f} after {history['step'].iloc[0]} steps → {final:.1f} after {history['step'].iloc[-1]}; "
      f"a zero output: {zero_output:.1f} (final / zero output: {final / zero_output:.2f})")
print(f"over the last 50 steps the loss still falls {-100 * slope * 50:.1f} %")
gain = step_metrics.diff().loc[step_metrics.index[1:], shown]  # what each stretch of steps bought
viz.readable(gain).rename_axis("steps up to")

# %% [markdown]
# **Units.** The loss is in the teacher's units squared. A decoder that outputs zeros has, scale by scale, the
# mean squares of $F_1, F_2, F_3$ printed in section 1 as its loss (their sum is the "zero output" above); the
# untrained model starts there, and the trained one ends at the printed fraction of it. So the reconstruction is far
# from exact in *magnitude* — the anomaly score (1 − cosine, notebook 01) compares directions and ignores
# magnitude, which is why the maps work all the same.
#
# **Convergence.** The curve falls steeply over the first 50 steps, then steadily; the drop of the learning
# rate shows as a slower, smoother tail. It is still falling at the end (the printed slope): the run has not
# converged in the loss.
#
# **What the steps buy** (the right-hand panels from step 50 on, the table with step 0, and the table of
# differences, measured on the test split). Step 0, the random decoder, is at chance level for the image
# AUROC (50; for AP chance is the fraction of defective images, for pixel AP the fraction of defect pixels). The first 50 steps buy most of the image AUROC and AU-PRO;
# the next 200 add several points more, the pixel AP the most. After the learning-rate drop the last stretch
# changes the metrics by half a point or less, in either direction — within what one test image moves
# them (notebook 04) — while the loss still falls. A lower training loss is not the goal in itself: a decoder
# that reconstructed *everything*, defects included, would have the lowest loss and find nothing (notebook 05).
# The demo's 300 steps are enough for its data; the paper's 226,000 are for a larger teacher and dataset.

# %%
# NBVAL_CHECK_OUTPUT
steps = list(step_metrics.index)
print("step 0 is at chance level (image AUROC < 60):", 0 in steps and step_metrics.loc[0, "image_auroc"] < 60)
print("the trained model is far better (image AUROC +30 points or more):",
      step_metrics.loc[steps[-1], "image_auroc"] - step_metrics.loc[0, "image_auroc"] >= 30)

# %% [markdown]
# ## The run directory
# `config.json` (the resolved config and the library versions), `history.csv` (step, epoch, loss, lr,
# images/s), `model.safetensors` (all weights, teacher included: the run loads offline), `checkpoints/step-N/`
# (weights + `train_state.pt` with the optimiser, scheduler and random-number state for an exact resume, and
# a `manifest.json` of their hashes), `metrics.json` / `metrics.csv` (the final evaluation) and
# `thresholds.json` (decision thresholds, notebook 06).

# %%
# NBVAL_CHECK_OUTPUT
print(", ".join(sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))))

# %%
extra = {"steps": int(RunDir(run_dir).read_metrics()["step"]), "hand_step_difference": difference,
         "metrics_by_step": {int(s): row for s, row in step_metrics.to_dict(orient="index").items()}}
path = write_results(output_dir, "03_training", params, config=cfg, run_dir=run_dir,
                     metrics=pd.read_csv(run_dir / "metrics.csv", index_col=0), extra=extra)
print(f"wrote {path}")

# %% [markdown]
# ## Summary
# - The training loss is the MSE between the teacher's features and their reconstruction, per scale, summed;
#   the decoder sees the neck's output with feature jitter added (training only).
# - One step = neck → jitter → decoder → loss → backward → clip the global gradient norm to 5 → AdamW
#   (decay 10⁻⁴ on weights only); written out above, it equals the library's step to within 10⁻⁶.
# - The rate is $\eta_0 \cdot B/16$, × 0.1 for the last 20 % of the epochs; the demo's $\eta_0$ is 4·10⁻³
#   because it trains 750× fewer steps than the paper.
# - The loss still falls at the end of the demo run, but the test metrics stop moving after the learning-rate
#   drop: the first 50 steps buy most, the next 200 several points more (pixel AP the most).
#
# Next: **04** explains the metrics of this run and how uncertain they are. Guide: [docs/training.md](../docs/training.md).
#
# ## Exercises
# 1. **Batch size.** What learning rate and LR-drop step does the demo preset get with batch 32? Use
#    `scaled_lr` and `lr_drop_step` (no training needed).
# 2. **Learning rate.** From the same initial model, take 8 library steps at lr 10⁻³ and at 4·10⁻³ on the
#    same batch; which loss is lower? (This is the demo preset's recorded reason, in miniature.)
# 3. **Jitter.** Set `model.jitter_scale = 0` and compute the loss of the initial model on the batch again:
#    how much of the step-1 loss is due to the noise?

# %%
# Solution 1
big = cfg.with_overrides({"train.batch_size": 32}).train
spe = len(train_set) // 32
print(f"batch 32: lr {scaled_lr(big):g}, {cfg.train.epochs * spe} steps, drop at step "
      f"{lr_drop_step(big, cfg.train.epochs * spe, spe)}")

# %%
# Solution 2
def short_run(lr: float, steps: int = 8) -> float:
    omniad_lite.seed_everything(cfg.train.seed)
    m = build_model(cfg.model).train()
    opt = build_optimizer(cfg.with_overrides({"train.lr": lr}).train, m)
    params = [p for p in m.parameters() if p.requires_grad]
    step = TrainStep(m, reconstruction_loss)
    for _ in range(steps):
        optimizer_step(step(features=features), opt, torch.amp.GradScaler("cpu", enabled=False), params, clip_norm)
    with torch.no_grad():
        return step(features=features).item()


print({f"lr {lr:g}": round(short_run(lr), 3) for lr in (1e-3, 4e-3)})

# %%
# Solution 3
model.load_state_dict(start["weights"])
with torch.no_grad():
    torch.set_rng_state(start["rng"])
    with_jitter = TrainStep(model, reconstruction_loss)(features=features).item()
    model.jitter_scale = 0.0
    without = TrainStep(model, reconstruction_loss)(features=features).item()
model.jitter_scale = cfg.model.jitter_scale
print(f"initial model: loss {with_jitter:.3f} with jitter, {without:.3f} without")

# %% [markdown]
# ## References
# - Omni-AD: *Omni-AD: Learning to Reconstruct Global and Local Features for Multi-class Anomaly Detection*,
#   arXiv 2503.21125 (ICME 2025); released code github.com/easyoo/Omni-AD (the recipe above).
# - UniAD: You et al., *A Unified Model for Multi-class Anomaly Detection*, NeurIPS 2022, arXiv 2206.03687
#   (feature jitter, the multi-class setting).
# - ADer: Zhang et al., *ADer: A Comprehensive Benchmark for Multi-class Visual Anomaly Detection*,
#   arXiv 2406.03262 (the trainer and optimiser settings the released code builds on).
# - MambaAD: He et al., *MambaAD: Exploring State Space Models for Multi-class Unsupervised Anomaly
#   Detection*, NeurIPS 2024, arXiv 2404.06564.
# - Loshchilov & Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019, arXiv 1711.05101 (AdamW).
# - Goyal et al., *Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour*, arXiv 1706.02677 (the
#   linear scaling rule).
# - Bergmann et al., *The MVTec Anomaly Detection Dataset*, IJCV 2021 (the paper runs' data).
