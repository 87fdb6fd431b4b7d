"""Training throughput (images/s) with each speed feature on and off; projected MVTec-AD wall time.

Runs the real training step of :mod:`omniad_lite.training` (``TrainStep``: frozen encoder under no_grad →
neck → jitter → decoder → loss; AdamW with the recipe's parameter groups, grad-norm clip 5) on a pool of
synthetic normalised images kept on the device, so the figures are the model side of training (the data
side is the uint8 memmap cache, see ``benchmarks/bench_cache.py``). Features toggled:

- ``amp``: autocast (``train.amp=auto``: bf16 where supported, else fp16 + GradScaler; ``--cpu-amp bf16``
  to try bf16 autocast on a CPU);
- ``channels_last``: channels-last memory format for the encoder/neck convs;
- ``compile``: ``torch.compile`` of the trainable step (the first steps compile; not timed);
- ``cache``: teacher-feature cache (``train.cache_teacher_features=memory``): the encoder is skipped.

Usage::

    python benchmarks/bench_train.py --device cuda                      # paper preset, 256², batch 16
    python benchmarks/bench_train.py --device cpu --steps 3 --no-compile  # what we could run without a GPU

Prints a markdown table with the device, the command, and the projected time of the full MVTec-AD recipe
(3,629 train images × 1000 epochs) from the best configuration.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from omniad_lite import presets
from omniad_lite.model import build_model, reconstruction_loss
from omniad_lite.env import resolve_device, seed_everything
from omniad_lite.training.optim import build_optimizer
from omniad_lite.training.step import TrainStep, autocast_factory, optimizer_step, resolve_amp

MVTEC_TRAIN_IMAGES = 3629
MVTEC_EPOCHS = 1000
POOL_BATCHES = 4  # distinct synthetic batches cycled through (and cached for the teacher-cache rows)


def measure(cfg, device, *, amp: bool, channels_last: bool, compile: bool, cache: bool, batch: int,
            size: int, steps: int, warmup: int, cpu_amp: str) -> float:
    """Images/s of ``steps`` timed training steps after ``warmup`` untimed ones."""
    seed_everything(0)
    model = build_model(cfg.model).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    t = cfg.train
    opt = build_optimizer(t, model, batch_size=batch)
    dtype = resolve_amp("auto" if device.type == "cuda" else cpu_amp, device) if amp else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    autocast = autocast_factory(dtype, device)
    step_module = TrainStep(model, reconstruction_loss)
    step_fn = torch.compile(step_module) if compile else step_module
    pool = [torch.randn(batch, 3, size, size, device=device) for _ in range(POOL_BATCHES)]
    if channels_last:
        pool = [x.contiguous(memory_format=torch.channels_last) for x in pool]
    if cache:  # the trainer stores fp16 features and feeds float32 copies
        with torch.no_grad(), autocast():
            pool = [[f.to(torch.float16) for f in model.encoder(x)] for x in pool]
    trainable = [p for p in model.parameters() if p.requires_grad]

    def one(i: int) -> None:
        inputs = {"features": [f.float() for f in pool[i % POOL_BATCHES]]} if cache else {"images": pool[i % POOL_BATCHES]}
        with autocast():
            loss = step_fn(**inputs)
        optimizer_step(loss, opt, scaler, trainable, t.grad_clip)

    for i in range(warmup):
        one(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        one(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="paper-mvtec")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (slow to compile on CPU)")
    p.add_argument("--cpu-amp", default="bf16", choices=["bf16", "off"], help="what the AMP rows use on a CPU")
    p.add_argument("--repeats", type=int, default=1,
                   help="measure every row this many times, interleaved, and keep each row's best (for shared CPUs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)

    # random-init teacher: same speed as ImageNet weights, and nothing to download
    cfg = presets.get(args.preset).with_overrides(["model.encoder_weights=null", *args.overrides])
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    rows = [dict(amp=False, channels_last=False, compile=False, cache=False)]
    for feature in ("amp", "channels_last", "compile", "cache"):
        rows.append({**rows[0], feature: True})
    rows.append(dict(amp=True, channels_last=True, compile=True, cache=True))
    rows.append(dict(amp=True, channels_last=True, compile=False, cache=True))
    if args.no_compile:
        rows = [r for r in rows if not r["compile"]]
    if device.type != "cuda" and args.cpu_amp == "off":
        rows = [r for r in rows if not r["amp"]]

    print(f"device: {name}; torch {torch.__version__}; preset {args.preset} ({cfg.model.encoder}, decoder depths "
          f"{tuple(cfg.model.decoder_depths)}), {args.size}², batch {args.batch}, {args.steps} timed steps "
          f"after {args.warmup} warm-up, best of {args.repeats} interleaved repeats")
    print(f"command: python benchmarks/{' '.join(['bench_train.py', *sys.argv[1:]])}\n")
    print("| AMP | channels-last | compile | teacher cache | images/s | MVTec-AD recipe (3,629 × 1000) |")
    print("|---|---|---|---|---|---|")
    per_row = [0.0] * len(rows)
    for _ in range(args.repeats):  # interleaved, so a burst of load from elsewhere hits every row alike
        for i, r in enumerate(rows):
            per_row[i] = max(per_row[i], measure(cfg, device, batch=args.batch, size=args.size, steps=args.steps,
                                                 warmup=args.warmup, cpu_amp=args.cpu_amp, **r))
    best = max(per_row)
    for r, ips in zip(rows, per_row):
        hours = MVTEC_TRAIN_IMAGES * MVTEC_EPOCHS / ips / 3600
        flags = " | ".join("on" if r[k] else "off" for k in ("amp", "channels_last", "compile", "cache"))
        print(f"| {flags} | {ips:.2f} | {hours:.1f} h |", flush=True)
    print(f"\nbest: {best:.2f} images/s → full MVTec-AD recipe ≈ "
          f"{MVTEC_TRAIN_IMAGES * MVTEC_EPOCHS / best / 3600:.1f} h of training (evaluation excluded)")


if __name__ == "__main__":
    main()
