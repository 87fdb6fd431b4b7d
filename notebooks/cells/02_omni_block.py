# %% [markdown]
# # 02 · The Omni-block, piece by piece
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/02_omni_block.ipynb)
#
# **What you will learn:** the decoder block of Omni-AD from the library's own source — the global branch
# (two attentions through learnable tokens), the local branch (depthwise-separable convs), the merge —
# with shapes and parameter counts per part and per decoder stage, checked against the paper model's
# sizes; what the learnable tokens of a *trained* model attend to, next to an untrained block; how far each
# branch looks; and the released code's FFN quirk, live.
#
# **Needs from earlier notebooks:** 01 for the features the decoder reconstructs. For the trained model it
# uses the run of **00** or **03** (their default output folders, or `run_dir`); run alone, it trains the
# demo preset itself first (about a minute on a CPU).
#
# **Guide:** [The model](../docs/model.md) · [The method](../docs/method.md)

# %% [parameters]
dim = 64                     # channels C of the toy input (the paper's last stage has 64)
side = 16                    # the toy input is (batch, side, side, dim), channels last
batch = 2
num_heads = 8                # paper: 8
num_query_tokens = 64        # paper: 64 learnable query tokens (an 8 x 8 grid)
num_kv_tokens = 64           # paper: 64 learnable key/value tokens
run_dir = None               # a finished run for sections 7-8; None: 00's or 03's default run, else train one
example_class = "coffee"     # class of the example image in sections 7-8 (the first class when absent)
output_dir = "runs/02_omni_block"

# %%
import ast
import inspect
import json
import textwrap

import pandas as pd
import torch
from IPython.display import Markdown, display

import omniad_lite
from omniad_lite import viz
from omniad_lite.model import omni_block, token_attention
from omniad_lite.notebook_params import check_injected_parameters, check_param, output_path
from omniad_lite.notebook_runs import check_run_dir

check_injected_parameters()  # a misspelt papermill parameter (-p num_head 4) stops here
for name in ("dim", "side", "batch", "num_heads", "num_query_tokens", "num_kv_tokens"):
    check_param(name, globals()[name], int, positive=True)
check_param("example_class", example_class, str)
check_run_dir(run_dir)
output_dir = output_path(output_dir)
pd.set_option("display.width", 100)


def show_source(obj) -> None:
    """Print the library's own source of a function or class, without its docstring."""
    code = textwrap.dedent(inspect.getsource(obj))
    node = ast.parse(code).body[0]
    lines = code.splitlines()
    if ast.get_docstring(node) is not None:  # drop the docstring's lines: the code is the point here
        doc = node.body[0]
        lines = lines[:doc.lineno - 1] + lines[doc.end_lineno:]
    print("\n".join(lines))


omniad_lite.seed_everything(0)
x = torch.randn(batch, side, side, dim)  # (B, H, W, C): the decoder works channels last
print("x", tuple(x.shape))

# %% [markdown]
# ## 1 · Attention through learnable tokens
# `TokenAttention` computes `(softmax(q kᵀ / √d) + bias) v`. The bias is learnable and added *after* the
# softmax (as in the released code). One side of each attention is a small set of learnable tokens, so its
# cost grows linearly with the number of positions H·W, not quadratically.

# %%
show_source(token_attention.TokenAttention.forward)

# %%
# NBVAL_CHECK_OUTPUT
attn = token_attention.TokenAttention(dim, num_heads, num_query_tokens, bias_over="queries")
tokens = torch.zeros(num_query_tokens, dim)  # (Nq, C), learnable in the block (zero-initialised)
out = attn(tokens, x.flatten(1, 2))  # queries: tokens; keys/values: the H·W positions
print("queries", tuple(tokens.shape), "keys/values", tuple(x.flatten(1, 2).shape), "→", tuple(out.shape))

# %% [markdown]
# ## 2 · The global branch: two attentions
# (a) the learnable **query** tokens gather the image into `Nq` summaries, laid out as a √Nq × √Nq grid and
# resized back to H × W: `m = out + x`; (b) every position queries the learnable **key/value** tokens:
# `global = out + m + x`. Each attention is followed by an FFN (Linear → SiLU → Linear).

# %%
show_source(omni_block.GlobalBranch.forward)

# %%
# NBVAL_CHECK_OUTPUT
global_branch = omni_block.GlobalBranch(dim, num_heads, num_query_tokens, num_kv_tokens)
print("global branch:", tuple(x.shape), "→", tuple(global_branch(x).shape))
print(pd.Series({name: sum(p.numel() for p in m.parameters()) for name, m in global_branch.named_children()}
                | {"query_tokens": global_branch.query_tokens.numel(), "kv_tokens": global_branch.kv_tokens.numel()},
                name="parameters").to_string())

# %% [markdown]
# ## 3 · The local branch: depthwise-separable convolutions
# Two separable convs (kernel 3 and kernel 5; depthwise → InstanceNorm → SiLU → 1×1 → InstanceNorm → SiLU)
# see each position's neighbourhood; their outputs are concatenated and fused by a 1×1 conv.

# %%
show_source(omni_block.SeparableConv.forward)
show_source(omni_block.LocalBranch.forward)

# %%
# NBVAL_CHECK_OUTPUT
local_branch = omni_block.LocalBranch(dim)
print("local branch:", tuple(x.shape), "→", tuple(local_branch(x).shape))
print(pd.Series({name: sum(p.numel() for p in m.parameters()) for name, m in local_branch.named_children()},
                name="parameters").to_string())

# %% [markdown]
# ## 4 · The merge: one Omni-block
# `y = Linear(global + local) → InstanceNorm → SiLU → Linear`, then a residual: `out = y + x`.

# %%
show_source(omni_block.OmniBlock.forward)

# %%
# NBVAL_CHECK_OUTPUT
block = omni_block.OmniBlock(dim, num_heads=num_heads, num_query_tokens=num_query_tokens, num_kv_tokens=num_kv_tokens)
print("Omni-block:", tuple(x.shape), "→", tuple(block(x).shape))
parts = {"global branch": block.global_branch, "local branch": block.local_branch,
         "merge (2 Linear)": torch.nn.ModuleList([block.merge_in, block.merge_out])}
print(pd.Series({k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
                | {"total": sum(p.numel() for p in block.parameters())}, name="parameters").to_string())

# %% [markdown]
# ## 5 · The paper model, stage by stage
# The decoder has four stages of Omni-blocks with depths (3, 9, 9, 7) at 8², 16², 32², 64² (for 256²
# inputs and the resnet34 teacher). We build the `paper-mvtec` model with a randomly initialised teacher
# (no download; only the counts matter here) and check the sizes measured on the released code (docs/method.md).

# %%
import dataclasses

from omniad_lite import presets
from omniad_lite.model import build_model

paper_cfg = presets.get("paper-mvtec")
paper = build_model(dataclasses.replace(paper_cfg.model, encoder_weights=None)).eval()
paper_resampled = build_model(dataclasses.replace(paper_cfg.model, encoder_weights=None, ffn="resampled"))


def count(module):
    return sum(p.numel() for p in module.parameters())


# %%
# NBVAL_CHECK_OUTPUT
sizes = pd.Series({"encoder (frozen)": count(paper.encoder), "neck": count(paper.neck),
                   "decoder, learned FFN (our default)": count(paper.decoder),
                   "decoder, resampled FFN (released)": count(paper_resampled.decoder)}, name="parameters")
print(sizes.map("{:,}".format).to_string())
RELEASED_SIZES = {"encoder": 8_170_304, "neck": 1_458_304, "decoder_released": 20_298_304, "ffns": 6_231_296}
assert sizes["encoder (frozen)"] == RELEASED_SIZES["encoder"] and sizes["neck"] == RELEASED_SIZES["neck"]
assert sizes["decoder, resampled FFN (released)"] == RELEASED_SIZES["decoder_released"]
assert sizes["decoder, learned FFN (our default)"] == RELEASED_SIZES["decoder_released"] + RELEASED_SIZES["ffns"]
print("all four counts match the released code (docs/method.md)")

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    feats, recs = paper(torch.zeros(1, 3, 256, 256))
stages = pd.DataFrame([{"stage": i, "blocks": len(s.blocks), "dim": paper.decoder.dims[i],
                        "upsample": s.upsample is not None, "parameters": count(s)}
                       for i, s in enumerate(paper.decoder.stages)]).set_index("stage")
print(stages.to_string())
print("teacher features:", [tuple(f.shape) for f in feats])
print("reconstructions: ", [tuple(r.shape) for r in recs])

# %% [markdown]
# ## 6 · The released code's FFN quirk, live
# In the released code the FFN after each attention is *built inside the forward pass*: its weights are
# redrawn at every call, never trained, never saved. `ffn="resampled"` replays that; our default
# `ffn="learned"` registers the FFN as normal parameters. We run each block twice in eval mode on the same
# input. The learnable tokens start at zero, and then every token gives the same FFN output, a constant
# over H × W that the merge's InstanceNorm removes — so at initialisation the quirk hides (differences at
# float precision only). Once training has moved the tokens away from zero it shows; we mimic that by
# drawing the tokens at random.

# %%
def two_pass_difference(mode: str, trained_tokens: bool) -> float:
    b = omni_block.OmniBlock(dim, num_heads=num_heads, num_query_tokens=num_query_tokens,
                             num_kv_tokens=num_kv_tokens, ffn=mode).eval()
    if trained_tokens:
        with torch.no_grad():
            b.global_branch.query_tokens.normal_()
            b.global_branch.kv_tokens.normal_()
    with torch.no_grad():
        return float((b(x) - b(x)).abs().max())


diffs = {f"{mode}, {'trained-like' if t else 'zero'} tokens": two_pass_difference(mode, t)
         for mode in ("learned", "resampled") for t in (False, True)}
print(pd.Series(diffs, name="max |pass 1 - pass 2|").map("{:.2g}".format).to_string())

# %%
# NBVAL_CHECK_OUTPUT
for mode in ("learned", "resampled"):
    print(f"ffn={mode!r:12} (trained-like tokens): two eval passes identical: "
          f"{diffs[f'{mode}, trained-like tokens'] == 0.0}")
assert diffs["learned, trained-like tokens"] == 0.0 and diffs["resampled, trained-like tokens"] > 1e-3

# %% [markdown]
# ## 7 · What the learnable query tokens attend to, trained and untrained
# Each query token of attention (a) spreads its attention over the image positions; the weights of a token
# sum to 1. `omniad_lite.viz.attention` recomputes them from the block's own layers (the fused attention
# kernel never forms them). We take the first block of the last (finest) decoder stage of a **trained**
# model and the same block **at initialisation**, feed both the same input (what the trained decoder passes
# to that block for an anomalous test image) and average over heads.

# %%
from omniad_lite.data import dataset_from_config
from omniad_lite.notebook_runs import quality_note, trained_run
from omniad_lite.viz.attention import block_input, query_token_attention

trained_dir = trained_run(run_dir, ["runs/00_quickstart/run", "runs/03_training/run"], output_dir / "demo_run")
display(Markdown(quality_note(trained_dir)))
run = omniad_lite.load_run(trained_dir)
model, mcfg = run.model, run.config.model
test_set = dataset_from_config(run.config.data, "test", model.preprocess)
cls = example_class if example_class in test_set.class_names else test_set.class_names[0]
index = next(i for i, s in enumerate(test_set.samples) if s.label == 1 and s.cls_name == cls)
image, mask = test_set.raw(index)  # uint8 (S, S, 3), (S, S)
stage = len(model.decoder.stages) - 1  # the finest stage
trained_block = model.decoder.stages[stage].blocks[0]
x_block = block_input(model, test_set[index]["image"][None], stage=stage)  # (1, h, w, C)
torch.manual_seed(0)
untrained_block = omni_block.OmniBlock(x_block.shape[-1], num_heads=mcfg.num_heads,
                                       num_query_tokens=mcfg.num_query_tokens,
                                       num_kv_tokens=mcfg.num_kv_tokens).eval()
weights = {name: query_token_attention(b.global_branch, x_block)[0].mean(dim=0)  # (Nq, h, w)
           for name, b in (("trained", trained_block), ("untrained", untrained_block))}
print(f"stage {stage}, block 0: input {tuple(x_block.shape)} → attention of {mcfg.num_query_tokens} query "
      f"tokens over {x_block.shape[1]}×{x_block.shape[2]} positions")

# %%
fig = viz.token_attention_comparison(weights, image=viz.to_display_image(image), max_tokens=8)
peak = {name: float(w.amax(dim=(1, 2)).mean() * w[0].numel()) for name, w in weights.items()}
print("mean peak attention ÷ uniform:", {k: round(v, 1) for k, v in peak.items()})

# %% [markdown]
# One colour scale for the whole figure, in units of uniform attention (1 = the token looks everywhere
# equally). At initialisation the tokens are all zero, so every token asks the same question: the maps are
# identical and flat (mean peak about 1× uniform, printed above). After training the query tokens look at the
# image's structure — for the coffee cup its rim, the saucer and the spoon — with peaks tens of times their
# uniform share; most tokens pick similar places with different weights. What they gather becomes the
# √Nq × √Nq grid of "summaries of normal appearance" that the global branch adds back to every position.
#
# ## 8 · Global vs local: how far each branch looks
# Take one output position of the trained block (the red cross, on the defect) and ask which input positions
# move it: the gradient of the branch's output there with respect to its input, summed over channels (an
# *effective receptive field*). The local branch's convolutions (kernels 3 and 5) see a 5 × 5 neighbourhood;
# the global branch sees the whole image, through the learnable tokens. Held fixed: the global branch's
# identity terms (they pass the position itself through) and the per-image InstanceNorm statistics of the
# local branch (through them every output depends slightly on the whole image). Log colour scale, shared.

# %%
from omniad_lite.viz.attention import branch_sensitivity

rows, cols = mask.nonzero()
h, w = x_block.shape[1:3]
position = (int(rows.mean() * h / mask.shape[0]), int(cols.mean() * w / mask.shape[1]))  # defect centre
sensitivity = branch_sensitivity(trained_block, x_block, position)  # {branch: (h, w)}, each sums to 1
fig = viz.sensitivity_maps(sensitivity, position, image=viz.to_display_image(image))
share = {name: float(m[max(0, position[0] - 2):position[0] + 3, max(0, position[1] - 2):position[1] + 3].sum())
         for name, m in sensitivity.items()}
print("share from the 5×5 neighbourhood:", {k: f"{100 * v:.0f}%" for k, v in share.items()})

# %% [markdown]
# The local branch reconstructs a position from its neighbours, so it can copy a small defect straight
# through (the "identical shortcut" of reconstruction methods); the global branch rebuilds it from tokens
# learnt on normal images, which cannot hold the defect. Together they keep normal detail sharp *and* push
# the reconstruction towards normal appearance; the paper's ablations find both branches necessary.

# %%
results = {"notebook": "02_omni_block", "block_parameters": int(count(block)),
           "paper_sizes": {k: int(v) for k, v in sizes.items()}, "paper_stages": stages.to_dict(orient="index"),
           "ffn_two_pass_max_abs_diff": diffs, "attention_shape": [1, mcfg.num_heads, *weights["trained"].shape],
           "attention_peak_over_uniform": peak, "sensitivity_share_5x5": share, "trained_run": str(trained_dir)}
(output_dir / "results.json").write_text(json.dumps(results, indent=2, default=int))
print(f"wrote {output_dir / 'results.json'}")

# %% [markdown]
# ## Summary
# - Global branch: two attentions through learnable tokens (queries, then keys/values), each with an FFN,
#   with the post-softmax bias of the released code; cost linear in H·W.
# - Local branch: kernel-3 and kernel-5 depthwise-separable convs, fused by a 1×1 conv.
# - The paper model has 8.17 M frozen encoder, 1.46 M neck and 20.30 M registered decoder parameters, plus
#   6.23 M FFN parameters that the released code redraws at every call and never trains (our default learns
#   them). Next: **03** trains the whole model.
