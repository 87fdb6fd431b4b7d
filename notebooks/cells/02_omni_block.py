# %% [markdown]
# # 02 · Inside the network: the neck, feature jitter and the Omni-block
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{REPO}/blob/main/notebooks/02_omni_block.ipynb)
#
# **The question:** a decoder trained to reconstruct features could simply learn to *copy* its input — then
# it would reconstruct the defects too and the anomaly map would stay empty. What in Omni-AD's network stops
# that, and what does its decoder block compute?
#
# **What you will learn:** the neck's bottleneck and why it exists (the "identical shortcut"); feature jitter,
# on real neck tokens; the decoder block of Omni-AD from the library's own source — the global branch (two
# attentions through learnable tokens, with their equation), the local branch (depthwise-separable convs),
# the merge — with shapes and parameter counts, checked against the paper model's sizes; what the learnable
# tokens of a *trained* model attend to; how far each branch looks; and the released code's FFN quirk, live.
#
# **Needs from earlier notebooks:** 01 for the features the decoder reconstructs and how the map is made.
# For the trained model it uses the run of **00** or **03** (their default output folders, or `run_dir`);
# run alone, it trains the demo preset itself first (about a minute on a CPU).
#
# **Guide:** [The model](../docs/model.md) (names, sizes, the released code's names) · [The method](../docs/method.md)

# %% [parameters]
dim = 64                     # channels C of the toy input (the paper's last stage has 64)
side = 16                    # the toy input is (batch, side, side, dim), channels last
batch = 2
num_heads = 8                # paper: 8
num_query_tokens = 64        # paper: 64 learnable query tokens (an 8 x 8 grid)
num_kv_tokens = 64           # paper: 64 learnable key/value tokens
run_dir = None               # a finished run (trained model); None: 00's or 03's default run, else train one
example_class = "coffee"     # class of the example image (the first class when absent)
# -- set-up: where and how it runs (the defaults suit a local run; papermill -p sets any of them) --
output_dir = "runs/02_omni_block"

# %%
import ast
import inspect
import textwrap

import pandas as pd
import torch
from IPython.display import Markdown, display

import omniad_lite
from omniad_lite import viz
from omniad_lite.model import omni_block, token_attention
from omniad_lite.notebook_params import (
    check_injected_parameters,
    check_param,
    notebook_parameters,
    output_path,
    show_notes,
)
from omniad_lite.notebook_results import write_results
from omniad_lite.notebook_runs import check_run_dir

check_injected_parameters()  # a misspelt papermill parameter (-p num_head 4) stops here
params = notebook_parameters()  # as run (papermill's -p values included), for results.json
show_notes()  # the kit's warnings print below their cell as `note (Category): ...` lines
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
# ## 1 · The neck: a bottleneck against the identical shortcut
# Reconstruction-based detectors share a failure mode: a decoder that can pass its input through unchanged
# reconstructs *everything* well, the defects included, and its anomaly map stays empty. UniAD calls this
# the "identical shortcut", the Omni-AD paper the "learning shortcut". The first defence is the neck: the
# decoder never sees the teacher's three feature maps, only one fused map at **half the coarsest scale's
# resolution** with twice its channels. What does not fit through that bottleneck the decoder has to rebuild
# from what it learnt about normal images. We run the neck of the trained demo model on one test image, step
# by step (the library's `Neck.forward` does the same four lines).

# %%
from omniad_lite.data import dataset_from_config
from omniad_lite.notebook_runs import is_short_schedule, quality_note, trained_run

trained_dir = trained_run(run_dir, ["runs/00_quickstart/run", "runs/03_training/run"], output_dir / "demo_run")
display(Markdown(quality_note(trained_dir)))
run = omniad_lite.load_run(trained_dir)
model, mcfg = run.model.eval(), run.config.model
full_run = not is_short_schedule(run.config)
test_set = dataset_from_config(run.config.data, "test", model.preprocess)
cls = example_class if example_class in test_set.class_names else test_set.class_names[0]
index = next(i for i, s in enumerate(test_set.samples) if s.label == 1 and s.cls_name == cls)
image, mask = test_set.raw(index)  # uint8 (S, S, 3), (S, S)
show_source(type(model.neck).forward)

# %%
# NBVAL_CHECK_OUTPUT
neck = model.neck
with torch.no_grad():
    f1, f2, f3 = model.encoder(test_set[index]["image"][None])  # teacher features, three scales
    a = neck.down1(f1) + neck.lateral2(f2)  # (1, c2, S/8, S/8)
    b = neck.fuse(neck.down2(a) + neck.lateral3(f3))  # (1, c3, S/16, S/16)
    fused = neck.blocks(b)  # (1, 2·c3, S/32, S/32): the bottleneck
    assert torch.equal(fused, neck([f1, f2, f3]))
for name, t in (("teacher f1", f1), ("teacher f2", f2), ("teacher f3", f3), ("fused scales", b),
                ("neck output", fused)):
    print(f"{name:13} {tuple(t.shape)}")
teacher_numbers = sum(f.numel() for f in (f1, f2, f3))
print(f"the decoder gets {fused.numel():,} numbers to rebuild {teacher_numbers:,} "
      f"({teacher_numbers / fused.numel():.1f}× fewer)")

# %% [markdown]
# On the demo model the coarsest teacher scale, 112 channels × 8², becomes 224 channels × 4² (the paper
# model: 256 × 16² → 512 × 8², section 7): the decoder must regenerate the teacher's 41,984 numbers per
# image from about twelve times fewer. Fine detail that is *normal* it can regenerate, because it has seen
# it on every training image; a defect it has never seen, so it comes out as normal surface — the
# difference is the anomaly map of notebook 01. Whether the bottleneck is enough on its own is not shown
# here; notebook 05 measures the variants.
#
# ## 2 · Feature jitter: noise on the neck's tokens, in training only
# The second defence (from UniAD) perturbs each neck token $z(x, y) \in \mathbb R^C$ during training:
#
# $$\tilde z(x, y) = z(x, y) + s \, \frac{\lVert z(x, y) \rVert_2}{C} \, \varepsilon(x, y), \qquad
#   \varepsilon(x, y) \sim \mathcal N(0, I_C), \quad s = 20 .$$
#
# The decoder must map the perturbed token back to the *clean* teacher features, so it learns to pull
# inputs towards normal appearance instead of copying them. The noise's expected length is about
# $s \sqrt{C} / C = s / \sqrt{C}$ times the token's length (the released code divides by $C$, not
# $\sqrt C$): for the demo's $C = 224$ that is $20 / \sqrt{224} \approx 1.34$ — the noise is *longer*
# than the token. Here it is on the real neck tokens of the image above:

# %%
from omniad_lite.model.omniad import feature_jitter

torch.manual_seed(0)
jittered = feature_jitter(fused, mcfg.jitter_scale)  # (1, 2·c3, h, w), the same shape
noise = jittered - fused
channels = fused.shape[1]
per_token = pd.DataFrame({
    "|z|": fused.norm(dim=1).flatten(), "|noise|": noise.norm(dim=1).flatten(),
    "cos(z, jittered z)": torch.nn.functional.cosine_similarity(fused, jittered, dim=1).flatten()})
print(f"neck output {tuple(fused.shape)}, jitter scale s = {mcfg.jitter_scale:g}, C = {channels}")
print("token (0, 0), first 6 channels  before:", [round(float(v), 2) for v in fused[0, :6, 0, 0]])
print("                                 after: ", [round(float(v), 2) for v in jittered[0, :6, 0, 0]])
print(per_token.describe().loc[["mean", "min", "max"]].round(3).to_string())
ratio = float((per_token["|noise|"] / per_token["|z|"]).mean())
expected = mcfg.jitter_scale / channels ** 0.5
print(f"|noise| / |z|: measured {ratio:.3f}, expected s/√C = {expected:.3f}")
assert abs(ratio / expected - 1) < 0.1

# %% [markdown]
# The jittered token keeps only part of its direction (the cosine column). What does the trained decoder
# make of it? Its reconstruction from the jittered tokens, compared with the teacher with the same
# $1 - \cos$ as the anomaly map (mean over each scale):

# %%
with torch.no_grad():
    clean_recon, jitter_recon = model.decoder(fused), model.decoder(jittered)
recon_distance = pd.DataFrame(
    {"from the clean tokens": [float((1 - torch.nn.functional.cosine_similarity(f, r, dim=1)).mean())
                               for f, r in zip((f1, f2, f3), clean_recon)],
     "from the jittered tokens": [float((1 - torch.nn.functional.cosine_similarity(f, r, dim=1)).mean())
                                  for f, r in zip((f1, f2, f3), jitter_recon)]},
    index=pd.Index([1, 2, 3], name="scale"))
print("mean 1 − cos(teacher, reconstruction):")
print(recon_distance.round(3).to_string())

# %% [markdown]
# Even from tokens whose direction the noise has largely replaced, the reconstruction stays close to the
# teacher at every scale: the decoder has learnt to produce normal features from a corrupted summary, which
# is exactly what it does to a defect at test time. The jitter is applied in `OmniAD.reconstruct` only when
# the model is in training mode:

# %%
from omniad_lite.model.omniad import OmniAD

show_source(OmniAD.reconstruct)

# %%
# NBVAL_CHECK_OUTPUT
features = [f1, f2, f3]
with torch.no_grad():
    evaluation = [model.reconstruct(features)[0] for _ in range(2)]
    model.train()
    model.neck.eval()  # keep the neck's BatchNorm statistics: only the jitter should differ
    training = [model.reconstruct(features)[0] for _ in range(2)]
    model.eval()
print("eval mode, two passes identical:    ", torch.equal(*evaluation))
print("training mode, two passes identical:", torch.equal(*training))
assert torch.equal(*evaluation) and not torch.equal(*training)

# %% [markdown]
# ## 3 · Attention through learnable tokens
# Now the decoder's block. Its global branch is built from one kind of attention, per head (head width $d$):
#
# $$\operatorname{Attn}(Q, K, V) = \Big(\operatorname{softmax}\big(Q K^\top / \sqrt d\big) + B\Big) V ,$$
#
# with a learnable bias $B$ added **after** the softmax (as in the released code), one value per learnable
# token: shape (heads, $N_q$, 1) when the tokens are the queries, (heads, 1, $N_k$) when they are the
# keys/values. Because $B$ is added after the softmax, the weights of a row no longer sum to one. One side of
# each attention is a small set of learnable tokens, so the cost grows linearly with the number of positions
# H·W, not quadratically.

# %%
show_source(token_attention.TokenAttention.forward)

# %%
# NBVAL_CHECK_OUTPUT
attn = token_attention.TokenAttention(dim, num_heads, num_query_tokens, bias_over="queries")
tokens = torch.zeros(num_query_tokens, dim)  # (Nq, C), learnable in the block (zero-initialised)
out = attn(tokens, x.flatten(1, 2))  # queries: tokens; keys/values: the H·W positions
print("queries", tuple(tokens.shape), "keys/values", tuple(x.flatten(1, 2).shape), "→", tuple(out.shape))

# %% [markdown]
# The library computes the first term with PyTorch's fused attention kernel and adds $B V$ separately. The
# check writes the equation out on random tokens and a random, non-zero bias; the two agree to float32
# round-off (relative difference below 1e-5):

# %%
# NBVAL_CHECK_OUTPUT
from einops import rearrange

torch.manual_seed(1)
q_tokens = torch.randn(num_query_tokens, dim)  # (Nq, C)
with torch.no_grad():
    attn.score_bias.normal_()  # (heads, Nq, 1)
    q = rearrange(attn.q(q_tokens), "n (h d) -> h n d", h=num_heads)  # (heads, Nq, d)
    k, v = (rearrange(t, "b n (h d) -> b h n d", h=num_heads) for t in attn.kv(x.flatten(1, 2)).chunk(2, dim=-1))
    weights_ab = torch.softmax(q @ k.transpose(-1, -2) / (dim // num_heads) ** 0.5, dim=-1)  # (B, heads, Nq, HW)
    by_hand = rearrange((weights_ab + attn.score_bias) @ v, "b h n d -> b n (h d)")  # (B, Nq, C)
    difference = float((by_hand - attn(q_tokens, x.flatten(1, 2))).abs().max() / by_hand.abs().max())
print(f"(softmax(QKᵀ/√d) + B) V by hand vs TokenAttention: largest difference {difference:.0e} of the largest value")
assert difference < 1e-5  # float32 round-off

# %% [markdown]
# ## 4 · The global branch: two attentions
# (a) the learnable **query** tokens gather the image into `Nq` summaries, laid out as a √Nq × √Nq grid and
# resized back to H × W: `m = out + x`; (b) every position queries the learnable **key/value** tokens:
# `global = out + m + x`. Each attention is followed by an FFN (Linear → SiLU → Linear).
# The block built here uses this notebook's parameters (`num_query_tokens = 64`, the paper's 8 × 8 grid), so
# its token counts differ from the demo model's 16 (section 9 looks at the trained demo model).

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
# ## 5 · The local branch: depthwise-separable convolutions
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
# ## 6 · The merge: one Omni-block
# `y = Linear(global + local) → InstanceNorm → SiLU → Linear`, then a residual: `out = y + x`. The whole
# block:
#
# ![The Omni-block: global branch, local branch, merge](../docs/images/omni_block.png)
#
# *Drawn by `docs/images/make_diagrams.py`; on Colab, [open the picture on
# GitHub](https://github.com/{REPO}/blob/main/docs/images/omni_block.png).*

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
# ## 7 · The paper model, stage by stage
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
with torch.no_grad():
    paper_fused = paper.neck(feats)  # (1, 512, 8, 8)
paper_numbers = sum(f.numel() for f in feats)
print(f"neck output {tuple(paper_fused.shape)}: {paper_fused.numel():,} numbers to rebuild {paper_numbers:,} "
      f"({paper_numbers / paper_fused.numel():.1f}× fewer)")

# %% [markdown]
# ## 8 · The released code's FFN quirk, live
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
# ## 9 · What the learnable query tokens attend to, trained and untrained
# Each query token of attention (a) spreads its attention over the image positions; the weights of a token
# sum to 1 (before the bias, which does not depend on the position and so does not change *where* a token
# looks). `omniad_lite.viz.attention` recomputes them from the block's own layers (the fused attention
# kernel never forms them). We take the first block of the last (finest) decoder stage of the **trained**
# model and the same block **at initialisation**, feed both the same input (what the trained decoder passes
# to that block for the anomalous test image of section 1) and average over the heads.

# %%
from omniad_lite.model.decoder import Decoder
from omniad_lite.viz.attention import block_input, query_token_attention

stage = len(model.decoder.stages) - 1  # the finest stage
trained_block = model.decoder.stages[stage].blocks[0]
x_block = block_input(model, test_set[index]["image"][None], stage=stage)  # (1, h, w, C)
torch.manual_seed(0)
untrained_decoder = Decoder(model.encoder.channels, tuple(mcfg.decoder_depths), num_heads=mcfg.num_heads,
                            num_query_tokens=mcfg.num_query_tokens, num_kv_tokens=mcfg.num_kv_tokens)
untrained_block = untrained_decoder.stages[stage].blocks[0].eval()  # initialised as the released code does
weights = {name: query_token_attention(b.global_branch, x_block)[0].mean(dim=0)  # (Nq, h, w)
           for name, b in (("trained", trained_block), ("untrained", untrained_block))}
relative = {name: w * w[0].numel() for name, w in weights.items()}  # attention ÷ uniform: 1 = looks everywhere
print(f"stage {stage}, block 0: input {tuple(x_block.shape)} → attention of {mcfg.num_query_tokens} query "
      f"tokens over {x_block.shape[1]}×{x_block.shape[2]} positions")
print(f"untrained block: every token's map is uniform, max |attention ÷ uniform − 1| = "
      f"{float((relative['untrained'] - 1).abs().max()):.1e}")
assert torch.allclose(relative["untrained"], torch.ones_like(relative["untrained"]), atol=1e-4)

# %% [markdown]
# At initialisation the learnable tokens are all zero, so every token asks the same question and gets the
# same, perfectly flat answer (checked above): there is nothing to draw. The trained block's
# learnable query tokens (all of them), each over a grey copy of the image, on one logarithmic colour scale
# centred on uniform attention (white; red = more, blue = less than a uniform share) that reaches the largest
# peak, so nothing is clipped:

# %%
fig = viz.token_attention_overlay(weights["trained"], viz.to_display_image(image))
peaks = relative["trained"].amax(dim=(1, 2))  # (Nq,)
print(f"peaks (× uniform): mean {float(peaks.mean()):.1f}, smallest {float(peaks.min()):.1f}, "
      f"largest {float(peaks.max()):.1f}")

# %% [markdown]
# Read the panels as: where is a token red? After training, the query tokens are no longer uniform: each
# concentrates on a few places — with peaks many times its uniform share (printed above; each panel's title
# gives its own) — and looks away from most of the image (blue). On the coffee cup most tokens pick the rim,
# several also the spoon's highlights; the tokens with the highest peaks spread over many small spots. Several
# tokens pick similar places with different weights. What they gather becomes the √Nq × √Nq grid of "summaries of normal appearance" that
# the global branch adds back to every position. The check below confirms the contrast: trained peaks well
# above the untrained block's 1.

# %%
peak = {name: float(r.amax(dim=(1, 2)).mean()) for name, r in relative.items()}
print("mean peak attention ÷ uniform:", {k: round(v, 1) for k, v in peak.items()})
if full_run:  # a smoke run's tokens have barely moved from zero
    assert peak["trained"] > 2 * peak["untrained"]

# %% [markdown]
# ## 10 · Global vs local: how far each branch looks
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
# The local branch builds a position from its 5 × 5 neighbourhood (the share printed above), so on its own
# it could carry a small defect through to the reconstruction — the identical shortcut again; the global
# branch builds it from tokens learnt on normal images, from the whole image. The paper's argument is that
# the two together keep normal detail sharp *and* pull the reconstruction towards normal appearance; its
# ablation study reports lower detection results when either branch is removed (Omni-AD, arXiv 2503.21125).
# What removing a branch does on the demo data is measured in notebook **05**
# ([05_ablations.ipynb](05_ablations.ipynb)): there every variant stays within the seed spread of the others,
# and on a class made for global context (a grid with a missing stud) every variant — each branch alone too —
# flags what a training-free patch matcher misses. The demo shows that reconstruction avoids the shortcut;
# it is too easy to show which branch the paper's gain on MVTec-AD comes from.

# %%
extra = {"block_parameters": int(count(block)),
         "paper_sizes": {k: int(v) for k, v in sizes.items()}, "paper_stages": stages.to_dict(orient="index"),
         "ffn_two_pass_max_abs_diff": diffs, "attention_shape": [1, mcfg.num_heads, *weights["trained"].shape],
         "attention_peak_over_uniform": peak, "sensitivity_share_5x5": share, "trained_run": str(trained_dir),
         "neck_shapes": {"in": list(f3.shape), "out": list(fused.shape)},
         "jitter_noise_over_norm": {"measured": ratio, "expected": expected},
         "attention_equation_max_abs_diff": difference}
path = write_results(output_dir, "02_omni_block", params, config=run.config, run_dir=trained_dir, extra=extra)
print(f"wrote {path}")

# %% [markdown]
# ## Summary
# - The neck fuses the teacher's three scales into one map at half the coarsest resolution
#   (demo: 112 × 8² → 224 × 4²; paper: 256 × 16² → 512 × 8²): the decoder must *regenerate* the features,
#   not copy them — the defence against the identical (learning) shortcut.
# - Feature jitter adds Gaussian noise of length about $s/\sqrt{C}$ times each neck token's, in training
#   only; the trained decoder still reconstructs the teacher from the jittered tokens.
# - Global branch: two attentions through learnable tokens (queries, then keys/values), each with an FFN,
#   with the post-softmax bias $(\operatorname{softmax}(QK^\top/\sqrt d) + B)V$; cost linear in H·W. Local
#   branch: kernel-3 and kernel-5 depthwise-separable convs, fused by a 1×1 conv; merge and residual.
# - The paper model has 8.17 M frozen encoder, 1.46 M neck and 20.30 M registered decoder parameters, plus
#   6.23 M FFN parameters that the released code redraws at every call and never trains (our default learns
#   them). Next: **03** trains the whole model.
#
# ## Exercises
# 1. **Jitter strength.** Jitter the neck tokens of section 2 with $s$ = 0, 5, 20 and 80 and look at the mean
#    cosine between clean and jittered tokens and at the distance of the decoder's reconstruction from the
#    teacher. Up to which $s$ does the trained decoder still produce the teacher's features?
# 2. **How many tokens?** Build a global branch with 4, 16 and 64 query tokens: how do the parameter count
#    and the grid the tokens are laid out on change? What happens with 15 tokens, and why?
# 3. **Another stage.** Draw the query tokens' attention at the coarsest decoder stage (stage 0) instead of
#    the finest. How many positions does a token choose from there?

# %%
# Solution 1: cosine between clean and jittered neck tokens, and the reconstruction's distance from the teacher
for s_jitter in (0, 5, 20, 80):
    torch.manual_seed(0)
    z = feature_jitter(fused, s_jitter)
    with torch.no_grad():
        rec = model.decoder(z)
    cos = float(torch.nn.functional.cosine_similarity(fused, z, dim=1).mean())
    dist = [float((1 - torch.nn.functional.cosine_similarity(f, r, dim=1)).mean()) for f, r in zip((f1, f2, f3), rec)]
    print(f"s = {s_jitter:2}: cos(z, jittered) {cos:.3f}   mean 1 − cos per scale {[round(d, 3) for d in dist]}")

# %%
# Solution 2: parameters and token grid of the global branch for several token counts
for n_tokens in (4, 16, 64, 15):
    try:
        g = omni_block.GlobalBranch(dim, num_heads, n_tokens, n_tokens)
        print(f"{n_tokens:2} tokens: grid {g.grid}×{g.grid}, {count(g):,} parameters")
    except ValueError as err:
        print(f"{n_tokens:2} tokens: {err}")

# %%
# Solution 3: the query tokens' attention at the coarsest stage (0)
x_coarse = block_input(model, test_set[index]["image"][None], stage=0)  # (1, h0, w0, C0)
coarse = query_token_attention(model.decoder.stages[0].blocks[0].global_branch, x_coarse)[0].mean(dim=0)
print(f"stage 0: {coarse.shape[0]} tokens over {coarse.shape[1]}×{coarse.shape[2]} = {coarse[0].numel()} positions")
fig = viz.token_attention_overlay(coarse, viz.to_display_image(image))

# %% [markdown]
# ## References
# - Omni-AD: J. Quan, A. Tong, Y. Cai, X. He, Y. Wang, Y. Zhou, "Omni-AD: Learning to Reconstruct Global and
#   Local Features for Multi-class Anomaly Detection", ICME 2025, [arXiv 2503.21125](https://arxiv.org/abs/2503.21125);
#   code: [github.com/easyoo/Omni-AD](https://github.com/easyoo/Omni-AD).
# - UniAD (the identical shortcut, feature jitter): Z. You et al., "A Unified Model for Multi-class Anomaly
#   Detection", NeurIPS 2022, [arXiv 2206.03687](https://arxiv.org/abs/2206.03687).
# - MambaAD (the neck, the decoder's stage layout): H. He et al., "MambaAD: Exploring State Space Models for
#   Multi-class Unsupervised Anomaly Detection", NeurIPS 2024, [arXiv 2404.06564](https://arxiv.org/abs/2404.06564).
# - ADer (the benchmark code Omni-AD's release builds on): J. Zhang et al., "A Comprehensive Library for
#   Benchmarking Multi-class Visual Anomaly Detection", [arXiv 2406.03262](https://arxiv.org/abs/2406.03262).
# - Effective receptive field (section 10): W. Luo, Y. Li, R. Urtasun, R. Zemel, "Understanding the Effective
#   Receptive Field in Deep Convolutional Neural Networks", NeurIPS 2016.
# - Datasets the paper reports on: MVTec AD (P. Bergmann et al., CVPR 2019), VisA (Y. Zou et al., ECCV 2022,
#   [arXiv 2207.14315](https://arxiv.org/abs/2207.14315)), Real-IAD (C. Wang et al., CVPR 2024,
#   [arXiv 2403.12580](https://arxiv.org/abs/2403.12580)).
