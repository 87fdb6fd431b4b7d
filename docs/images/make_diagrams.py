"""Draw the two diagrams the notebooks and docs show: the Omni-AD pipeline and the Omni-block.

    python docs/images/make_diagrams.py            # rewrites docs/images/pipeline.png and omni_block.png
    python docs/images/make_diagrams.py OUT_DIR    # writes them into OUT_DIR instead

Plain matplotlib boxes and arrows, no randomness and no timestamp in the files, so the same matplotlib gives
the same bytes. The shapes written on the pipeline are those of the ``paper-mvtec`` preset (resnet34 teacher,
256² input, decoder depths 3-9-9-7) and of the ``demo`` preset (EfficientNet-Lite0 teacher, 128² input,
depths 1-2-2-1); ``tests/test_diagrams.py`` checks them against the models the kit builds. Sources: Omni-AD
(arXiv 2503.21125), Fig. 2, and the released code (github easyoo/Omni-AD ``model/omniad.py``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent
DPI = 100
FONT = 9
COLOURS = {"input": "#eeeeee", "frozen": "#c6dbef", "neck": "#fdd0a2", "jitter": "#fee6ce", "decoder": "#c7e9c0",
           "score": "#fcbba1", "loss": "#dadaeb", "global": "#c6dbef", "local": "#c7e9c0", "merge": "#fdd0a2"}
# (paper-mvtec, demo) shapes: channels × side², per the presets (tests/test_diagrams.py checks them)
PAPER, DEMO = "paper (resnet34, 256²)", "demo (EfficientNet-Lite0, 128²)"
SHAPES = {
    "f1": ("64 × 64²", "24 × 32²"), "f2": ("128 × 32²", "40 × 16²"), "f3": ("256 × 16²", "112 × 8²"),
    "neck": ("512 × 8²", "224 × 4²"),
    "stage0": ("512 × 8², 3 blocks", "224 × 4², 1 block"), "stage1": ("256 × 16², 9 blocks", "112 × 8², 2 blocks"),
    "stage2": ("128 × 32², 9 blocks", "40 × 16², 2 blocks"), "stage3": ("64 × 64², 7 blocks", "24 × 32², 1 block"),
}


def box(ax, x: float, y: float, w: float, h: float, text: str, colour: str, *, size: float = FONT,
        weight: str = "normal", style: str = "round,pad=0.02,rounding_size=0.08") -> tuple[float, float, float, float]:
    """A rounded box with centred text; returns ``(x, y, w, h)`` for placing arrows."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=colour, edgecolor="#444444", linewidth=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, linespacing=1.3)
    return x, y, w, h


def arrow(ax, start: tuple[float, float], end: tuple[float, float], *, dashed: bool = False, colour: str = "#333333",
          label: str | None = None, rad: float = 0.0) -> None:
    """An arrow from ``start`` to ``end`` with an optional label at its middle."""
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.2, linestyle="--" if dashed else "-",
                                shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={rad}"))
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, label, ha="center", va="bottom",
                fontsize=FONT - 1, color=colour)


def _canvas(width: float, height: float):
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def two_shapes(key: str) -> str:
    paper, demo = SHAPES[key]
    return f"{paper}\n{demo}"


def pipeline(path: Path) -> Path:
    """Encoder → neck → jitter (training) → Omni-block decoder → per-scale 1 − cos → anomaly map."""
    fig, ax = _canvas(15.0, 6.6)
    ax.text(0.2, 6.3, "Omni-AD: reconstruct the frozen teacher's features; where the reconstruction fails, the image "
            "is anomalous", fontsize=FONT + 2, weight="bold", va="center")
    ax.text(0.2, 5.92, f"shapes: channels × side² — first line {PAPER}, second line {DEMO}", fontsize=FONT,
            va="center", color="#444444")
    box(ax, 0.2, 2.6, 1.3, 1.0, "input image\n3 × S²", COLOURS["input"])
    box(ax, 1.9, 1.0, 1.5, 4.2, "frozen\nencoder\n(teacher,\ntimm,\nImageNet\nweights)", COLOURS["frozen"])
    arrow(ax, (1.5, 3.1), (1.9, 3.1))
    rows = {"f1": 4.3, "f2": 2.9, "f3": 1.5}  # y of each teacher scale box (fine at the top)
    for i, (key, y) in enumerate(rows.items(), 1):
        box(ax, 3.8, y, 1.5, 0.9, f"$f_{i}$  (stride {2 ** (i + 1)})\n" + two_shapes(key), COLOURS["frozen"],
            size=FONT - 1)
        arrow(ax, (3.4, y + 0.45), (3.8, y + 0.45))
    box(ax, 5.7, 1.0, 1.6, 3.9, "neck\nfuse the 3 scales\n(conv-BN-ReLU)\n+ 3 Bottlenecks\n(the first:\nstride 2,\n"
        "channels × 2)\n\n" + two_shapes("neck"), COLOURS["neck"], size=FONT - 1)
    for y in rows.values():
        arrow(ax, (5.3, y + 0.45), (5.7, 3.0))
    box(ax, 7.6, 1.05, 1.2, 0.8, "feature\njitter\n(training only)", COLOURS["jitter"], size=FONT - 1)
    arrow(ax, (7.3, 1.45), (7.6, 1.45))
    stage_y = {"stage0": 1.0, "stage1": 2.1, "stage2": 3.2, "stage3": 4.3}  # coarse at the bottom
    for i, (key, y) in enumerate(stage_y.items()):
        up = "" if i == 0 else "↑ ×2, "
        box(ax, 9.1, y, 2.1, 0.9, f"decoder stage {i} ({up}Omni-blocks)\n" + two_shapes(key), COLOURS["decoder"],
            size=FONT - 1)
        if i:
            arrow(ax, (10.15, stage_y[f"stage{i - 1}"] + 0.9), (10.15, y))
    arrow(ax, (8.8, 1.45), (9.1, 1.45))
    for key, i in {"stage1": "3", "stage2": "2", "stage3": "1"}.items():
        y = stage_y[key] + 0.45
        box(ax, 11.5, y - 0.3, 0.8, 0.6, f"$\\hat f_{i}$", COLOURS["decoder"])
        arrow(ax, (11.2, y), (11.5, y))
        arrow(ax, (12.3, y), (12.6, 3.3))
    box(ax, 12.6, 2.5, 2.2, 1.6, "per scale\n$1 - \\cos(f_i, \\hat f_i)$\nupsample to S, mean,\nGaussian blur σ = 4",
        COLOURS["score"], size=FONT - 1)
    box(ax, 12.6, 0.5, 2.2, 1.3, "anomaly map S × S\nimage score = max", COLOURS["score"], size=FONT - 1,
        weight="bold")
    arrow(ax, (13.7, 2.5), (13.7, 1.8))
    box(ax, 12.6, 4.95, 2.2, 0.8, "training loss\n$\\sum_i$ MSE$(f_i, \\hat f_i)$", COLOURS["loss"], size=FONT - 1)
    arrow(ax, (4.55, 5.2), (12.6, 5.4), dashed=True, colour="#555555",
          label="teacher features $f_i$: the targets of the loss and the reference of the score")
    arrow(ax, (12.3, 4.75), (12.75, 4.95))
    return _save(fig, path)


def omni_block(path: Path) -> Path:
    """The Omni-block: global branch (two learnable-token attentions + FFNs), local branch (k3/k5), merge."""
    fig, ax = _canvas(14.0, 6.0)
    ax.text(0.2, 5.7, "Omni-block (decoder block): x is (B, H, W, C), channels last; output = x + merge(global + "
            "local)", fontsize=FONT + 2, weight="bold", va="center")
    box(ax, 0.2, 2.5, 1.1, 0.9, "x\nB × H × W × C", COLOURS["input"], size=FONT - 1)
    ax.text(1.5, 5.1, "global branch: attention through learnable tokens  "
            "$(\\mathrm{softmax}(QK^\\top/\\sqrt{d}) + B)\\,V$, bias $B$ learnable, added after the softmax",
            fontsize=FONT, color="#08519c")
    box(ax, 1.9, 3.6, 2.9, 1.2, "attention (a)\nqueries: $N_q$ learnable tokens\nkeys/values: the H·W positions of x",
        COLOURS["global"], size=FONT - 1)
    box(ax, 5.1, 3.6, 0.9, 1.2, "FFN", COLOURS["global"], size=FONT - 1)
    box(ax, 6.3, 3.6, 2.2, 1.2,
        "$N_q$ outputs as a\n$\\sqrt{N_q} \\times \\sqrt{N_q}$ grid,\nnearest-resized to H × W\n"
        "m = grid + x", COLOURS["global"], size=FONT - 1)
    box(ax, 8.8, 3.6, 2.6, 1.2, "attention (b)\nqueries: every position of m\nkeys/values: $N_{kv}$ learnable tokens",
        COLOURS["global"], size=FONT - 1)
    box(ax, 11.7, 3.6, 0.9, 1.2, "FFN\n+ m + x", COLOURS["global"], size=FONT - 1)
    for a, b in ((4.8, 5.1), (6.0, 6.3), (8.5, 8.8), (11.4, 11.7)):
        arrow(ax, (a, 4.2), (b, 4.2))
    ax.text(1.5, 2.1, "local branch: depthwise-separable convolutions (each: depthwise k×k → IN → SiLU → 1×1 → IN → "
            "SiLU)", fontsize=FONT, color="#006d2c")
    box(ax, 1.9, 1.05, 2.9, 0.8, "separable conv, kernel 3", COLOURS["local"], size=FONT - 1)
    box(ax, 1.9, 0.1, 2.9, 0.8, "separable conv, kernel 5", COLOURS["local"], size=FONT - 1)
    box(ax, 5.3, 0.5, 2.6, 0.9, "concatenate (2C)\n→ 1×1 conv → IN → SiLU", COLOURS["local"], size=FONT - 1)
    arrow(ax, (4.8, 1.45), (5.3, 1.1))
    arrow(ax, (4.8, 0.5), (5.3, 0.8))
    arrow(ax, (1.3, 3.2), (1.9, 4.0))
    arrow(ax, (1.3, 2.7), (1.9, 1.45))
    arrow(ax, (1.3, 2.6), (1.9, 0.5))
    box(ax, 12.0, 2.2, 0.5, 0.6, "+", COLOURS["merge"], size=FONT + 3)
    arrow(ax, (12.15, 3.6), (12.25, 2.8))
    arrow(ax, (7.9, 0.95), (12.0, 2.45))
    box(ax, 10.6, 0.3, 3.2, 0.8, "merge: Linear → IN → SiLU → Linear\n+ x (residual) → output, B × H × W × C",
        COLOURS["merge"], size=FONT - 1)
    arrow(ax, (12.25, 2.2), (12.25, 1.1))
    ax.text(13.8, 5.25, "IN = InstanceNorm, FFN = Linear → SiLU → Linear", fontsize=FONT - 1, ha="right",
            color="#444444")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, facecolor="white", metadata={"Software": None})  # no version string: stable bytes
    plt.close(fig)
    print("wrote", path)
    return path


def main(argv: list[str]) -> list[Path]:
    out = Path(argv[0]) if argv else HERE
    out.mkdir(parents=True, exist_ok=True)
    return [pipeline(out / "pipeline.png"), omni_block(out / "omni_block.png")]


if __name__ == "__main__":
    main(sys.argv[1:])
