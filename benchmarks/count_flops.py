"""FLOPs of one training image of a preset, and the training time they imply on a GPU of a given throughput.

Counted with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions, forward and
backward; element-wise work is not counted) on one random image at the preset's input size, random-init
teacher: the teacher's forward (run once per image when its features are cached) and the train step
(neck → jitter → decoder → loss, its backward). The time estimate is
``train images × epochs × FLOPs per image / (peak × utilisation)``: the peak is the GPU's datasheet figure,
the utilisation an assumption (a range), so the result is an estimate; the notebooks' runtime cell measures
the real figure on the user's GPU (:func:`omniad_lite.colab.runtime_report`).

    python benchmarks/count_flops.py --preset paper-mvtec-100 --peak-tflops 8.1 --utilisation 0.25,0.5
"""
from __future__ import annotations

import argparse
import dataclasses

import torch
from torch.utils.flop_counter import FlopCounterMode

from omniad_lite import presets
from omniad_lite.colab.runtime import PAPER_TRAIN_IMAGES
from omniad_lite.model import build_model, reconstruction_loss
from omniad_lite.training.step import TrainStep

GIGA = 1e9
TERA = 1e12
HOUR = 3600


def count(fn) -> int:
    """FLOPs counted while ``fn()`` runs."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def flops_per_image(preset: str) -> dict[str, int]:
    """``teacher`` (forward), ``step`` (trainable forward + backward) and ``step_uncached`` (both) FLOPs."""
    cfg = presets.get(preset)
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(cfg.model, encoder_weights=None)).train()
    size = model.preprocess.image_size
    image = torch.randn(1, 3, size, size)
    with torch.no_grad():
        features = model.encoder(image)  # 3 × (1, C_i, H_i, W_i)
    teacher = count(lambda: model.encoder(image))
    step = TrainStep(model, reconstruction_loss)
    trainable = count(lambda: step(features=[f.clone() for f in features]).backward())
    return {"teacher": teacher, "step": trainable, "step_uncached": teacher + trainable}


def main(argv: list[str] | None = None) -> list[str]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="paper-mvtec-100")
    p.add_argument("--peak-tflops", type=float, default=8.1, help="GPU peak (default: T4 fp32, datasheet)")
    p.add_argument("--utilisation", default="0.25,0.5", help="assumed fractions of the peak, comma-separated")
    p.add_argument("--train-images", type=int, default=None, help="default: the preset's dataset's count")
    args = p.parse_args(argv)
    cfg = presets.get(args.preset)
    images = args.train_images or PAPER_TRAIN_IMAGES.get(args.preset)
    if images is None:
        raise SystemExit(f"--train-images: no known train-image count for preset {args.preset!r}; pass it")
    f = flops_per_image(args.preset)
    lines = [(f"{args.preset}: teacher forward {f['teacher'] / GIGA:.2f} GFLOPs per image; train step (neck + decoder, "
              f"forward + backward) {f['step'] / GIGA:.2f} GFLOPs; with the teacher {f['step_uncached'] / GIGA:.2f}"),
             f"{images:,} images × {cfg.train.epochs} epochs at {args.peak_tflops} TFLOPS peak:"]
    for u in (float(x) for x in args.utilisation.split(",")):
        for name, key in (("teacher cached", "step"), ("teacher recomputed", "step_uncached")):
            hours = images * cfg.train.epochs * f[key] / (args.peak_tflops * TERA * u) / HOUR
            lines.append(f"  utilisation {u:.0%}, {name}: {hours:.1f} h")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
