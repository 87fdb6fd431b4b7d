# %% [markdown]
# # 05 · Ablations: a papermill sweep over notebook 03
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/05_ablations.ipynb)
#
# **What you will learn:** how to run notebook 03 as a function over a grid of settings with papermill —
# learned vs resampled FFN (the released code's quirk), the global or the local branch switched off,
# fewer learnable tokens, shallower decoders — and collect every run's `metrics.json` into one table and
# one plot. Each variant leaves an executed notebook you can open to see its curves.
#
# **Needs from earlier notebooks:** 03 (it is the notebook being run). The default grid is tiny (two demo
# classes, a few dozen steps per variant) so it finishes on a CPU in minutes; real ablations pass a bigger
# `variants`/`epochs` and a GPU, e.g. `papermill 05_ablations.ipynb out.ipynb -p epochs 100 -p classes null`.

# %%
# Colab only: install the kit (does nothing anywhere else).
import sys
if "google.colab" in sys.modules:
    %pip install -q "omniad_lite[notebooks] @ git+https://github.com/{REPO}"

# %% [parameters]
preset = "demo"
data_root = None                     # None: the demo dataset
classes = ["brick", "coffee"]        # a subset keeps the default sweep fast; None: every class
epochs = None                        # None: use iterations
iterations = 20                      # optimiser steps per variant
device = "auto"
variants = {                         # name → config overrides applied on top of the preset
    "baseline (learned FFN)": [],
    "resampled FFN (released)": ["model.ffn=resampled"],
    "no global branch": ["model.use_global_branch=false"],
    "no local branch": ["model.use_local_branch=false"],
}
notebook = "03_training.ipynb"       # the notebook run for each variant (next to this one)
output_dir = "runs/05_ablations"

# %%
import json
from pathlib import Path

import pandas as pd
import papermill as pm

import omniad_lite
from omniad_lite import viz
from omniad_lite.notebook_params import check_injected_parameters, check_param, experiment_from_params, output_path

check_injected_parameters()  # a misspelt papermill parameter stops here
check_param("variants", variants, dict)
for name, extra in variants.items():  # every variant's config is checked before anything runs
    experiment_from_params(preset, extra, data_root=data_root, classes=classes, epochs=epochs,
                           iterations=iterations, device=device)
candidates = [Path(notebook), Path("notebooks") / notebook]
template = next((p for p in candidates if p.is_file()), None)
if template is None:
    raise FileNotFoundError(f"notebook {notebook!r} not found in {[str(p) for p in candidates]}; "
                            f"run this notebook from the repository root or notebooks/")
output_dir = output_path(output_dir)
omniad_lite.seed_everything(0)
print(f"{len(variants)} variants × {iterations if epochs is None else f'{epochs} epochs'} → {output_dir}")

# %% [markdown]
# ## Run the sweep
# One papermill call per variant: notebook 03 with this variant's parameters, executed into
# `output_dir/<variant>/03_training.ipynb`; its run directory is `output_dir/<variant>/run`.

# %%
def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


for name, extra in variants.items():
    out = output_dir / slug(name)
    out.mkdir(parents=True, exist_ok=True)
    print(f"→ {name}: {extra}")
    pm.execute_notebook(template, out / template.name, progress_bar=False, parameters=dict(
        preset=preset, data_root=data_root, classes=classes, epochs=epochs, iterations=iterations,
        device=device, overrides=extra, output_dir=str(out), live_every_s=60.0))

# %% [markdown]
# ## Collect every run's `metrics.json`

# %%
rows = {}
for name in variants:
    run = output_dir / slug(name) / "run"
    m = json.loads((run / "metrics.json").read_text())
    cfg = omniad_lite.ExperimentConfig.load(run / "config.json")
    rows[name] = {**m["final"]["mean"], "steps": m["step"], "train_time_s": m["train_time_s"],
                  "ffn": cfg.model.ffn, "global": cfg.model.use_global_branch, "local": cfg.model.use_local_branch,
                  "tokens": cfg.model.num_query_tokens, "depths": "-".join(map(str, cfg.model.decoder_depths))}
table = pd.DataFrame.from_dict(rows, orient="index")
table.to_csv(output_dir / "ablations.csv")
table.round(1)

# %%
fig = viz.metric_bars(table, ["image_auroc", "pixel_auroc", "pixel_aupro", "mad"])
fig.savefig(output_dir / "ablations.png", dpi=100, bbox_inches="tight")

# %%
results = {"notebook": "05_ablations", "variants": variants, "table": table.to_dict(orient="index"),
           "csv": str(output_dir / "ablations.csv")}
(output_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
print(f"wrote {output_dir / 'results.json'}")

# %% [markdown]
# ## Summary
# - papermill turns notebook 03 into a function of its parameters; this notebook is the sweep driver and
#   `ablations.csv` the aggregated table.
# - With the tiny default budget the differences are small and noisy: treat them as a demonstration of
#   the machinery. For real conclusions use full datasets and epochs, e.g.
#   `-p preset paper-mvtec -p data_root /data/mvtec_ad -p classes null -p epochs 1000 -p iterations null`
#   and a grid with token counts (`["model.num_query_tokens=16", "model.num_kv_tokens=16"]`) and decoder
#   depths (`["model.decoder_depths=[2,6,6,4]"]`).
