"""Model speed: train-step and eval images/s and peak memory for a preset, batch size and device.

A train step is what the training engine does per batch: frozen encoder under ``no_grad`` → neck → jitter →
decoder → loss → backward → grad-norm clip → AdamW step on the neck and decoder, with the training
engine's own optimiser builder and step (:func:`omniad_lite.training.optim.build_optimizer`). Eval is one
forward under ``torch.inference_mode``. Inputs are random tensors (speed does not depend on pixel values), so no dataset
is needed. Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, peak RSS of the process on a CPU.
Prints one JSON line (also appended to ``--out`` if given) with the load average, since on a shared
machine the figure depends on what else runs.

    python benchmarks/bench_model.py --preset paper-mvtec --batch-size 8 --image-size 256 --device cpu --steps 3

The preset's encoder weights only matter for values, not speed: ``--random-encoder`` builds the encoder
with random weights (the default fallback when the preset's weights cannot load offline, e.g. timm's
resnet34 from the Hugging Face hub).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import time

import torch
from tqdm.auto import tqdm

from omniad_lite import presets
from omniad_lite.env import resolve_device
from omniad_lite.model import build_model, reconstruction_loss
from omniad_lite.training.optim import build_optimizer
from omniad_lite.training.step import TrainStep, optimizer_step

KIB = 1024
MIB = 1024 ** 2


def build(preset: str, random_encoder: bool, ffn: str | None):
    """Model config and model of ``preset``; falls back to a random encoder when its weights cannot load."""
    cfg = presets.get(preset)
    model_cfg = cfg.model
    if ffn is not None:
        model_cfg = dataclasses.replace(model_cfg, ffn=ffn)
    if random_encoder:
        model_cfg = dataclasses.replace(model_cfg, encoder_weights=None)
        return cfg, model_cfg, build_model(model_cfg)
    try:
        return cfg, model_cfg, build_model(model_cfg)
    except (RuntimeError, OSError) as err:
        print(f"[bench_model] encoder weights {model_cfg.encoder_weights!r} unavailable "
              f"({str(err).splitlines()[0][:120]}); timing with a random encoder (same speed)")
        model_cfg = dataclasses.replace(model_cfg, encoder_weights=None)
        return cfg, model_cfg, build_model(model_cfg)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    """Peak CUDA memory allocated, or peak resident set size of this process on CPU (Linux: KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / MIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB / MIB


def training_parts(model, cfg, batch_size: int):
    """The optimiser and train step the training engine uses (same builder, same parameter groups)."""
    optimizer = build_optimizer(cfg.train, model, batch_size=batch_size)
    return optimizer, TrainStep(model, reconstruction_loss)


def time_train(model, images, cfg, steps: int, warmup: int, device) -> float:
    """Seconds per train step (mean over ``steps`` after ``warmup``)."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, train_step = training_parts(model, cfg, images.shape[0])
    scaler = torch.amp.GradScaler(device.type, enabled=False)

    def step():
        optimizer_step(train_step(images), optimizer, scaler, params, cfg.train.grad_clip)

    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc="train steps", leave=False):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps


@torch.inference_mode()
def time_eval(model, images, steps: int, warmup: int, device) -> float:
    """Seconds per eval forward (mean over ``steps`` after ``warmup``)."""
    model.eval()
    for _ in range(warmup):
        model(images)
    sync(device)
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc="eval steps", leave=False):
        model(images)
    sync(device)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper-mvtec", choices=presets.names())
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=None, help="default: the preset's image size")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after --warmup untimed ones)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--ffn", choices=("learned", "resampled"), default=None, help="override the preset")
    parser.add_argument("--random-encoder", action="store_true", help="random encoder weights (same speed)")
    parser.add_argument("--out", default=None, help="append the JSON line to this file")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    torch.manual_seed(0)
    cfg, model_cfg, model = build(args.preset, args.random_encoder, args.ffn)
    size = args.image_size or cfg.model.image_size
    model = model.to(device)
    images = torch.randn(args.batch_size, 3, size, size, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    load_before = os.getloadavg()[0]
    train_s = time_train(model, images, cfg, args.steps, args.warmup, device)
    train_peak = peak_memory_mib(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    eval_s = time_eval(model, images, args.steps, args.warmup, device)
    eval_peak = peak_memory_mib(device)
    result = {
        "preset": args.preset, "batch_size": args.batch_size, "image_size": size, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "encoder_weights": model_cfg.encoder_weights, "ffn": model_cfg.ffn,
        "train_images_per_s": round(args.batch_size / train_s, 3),
        "eval_images_per_s": round(args.batch_size / eval_s, 3),
        "train_peak_mib": round(train_peak, 1),
        # on CPU peak RSS never decreases, so the eval figure includes the training run before it
        "eval_peak_mib": round(eval_peak, 1),
        "steps": args.steps, "warmup": args.warmup,
        "loadavg_1min_start_end": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "torch": torch.__version__,
    }
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(line + "\n")
    return result


if __name__ == "__main__":
    main()
