"""Where a training step's time goes: ``torch.profiler`` over the engine's own train step.

The step is the training engine's (:class:`~omniad_lite.training.step.TrainStep` + ``optimizer_step`` + AdamW of
:func:`~omniad_lite.training.optim.build_optimizer`, inside ``keep_freed_memory`` on a CPU as ``train`` runs
it), on random inputs, random-init teacher. Each phase is
wrapped in ``record_function`` so the summary splits the wall time into encoder (no grad), trainable forward
(neck, jitter, decoder, loss), backward, grad-norm clip and optimizer; then the ops that dominate, by self CPU
(or CUDA) time, summed over the profiled steps.

    python benchmarks/profile_train_step.py --preset paper-mvtec --batch 8 --device cpu --steps 2

Prints markdown tables (phases, top ops) and the load average, since on a shared machine absolute times
mean little; the shares are what to read.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from omniad_lite import presets
from omniad_lite.env import resolve_device, seed_everything
from omniad_lite.model import build_model, reconstruction_loss
from omniad_lite.training.allocator import keep_freed_memory
from omniad_lite.training.optim import build_optimizer
from omniad_lite.training.step import autocast_factory, resolve_precision

PHASES = ("encoder", "forward", "backward", "clip", "optimizer")


def build(args):
    cfg = presets.get(args.preset).with_overrides(["model.encoder_weights=null", *args.overrides])
    device = resolve_device(args.device)
    seed_everything(0)
    model = build_model(cfg.model).to(device).train()
    optimizer = build_optimizer(cfg.train, model, batch_size=args.batch)
    images = torch.randn(args.batch, 3, cfg.model.image_size, cfg.model.image_size, device=device)
    return cfg, device, model, optimizer, images


def step(model, optimizer, images, trainable, grad_clip: float, autocast) -> None:
    """The engine's step (TrainStep + optimizer_step, fp32: no scaler), with one label per phase."""
    optimizer.zero_grad(set_to_none=True)
    with autocast():
        with record_function("encoder"), torch.no_grad():
            features = model.encoder(images)
        with record_function("forward"):
            loss = reconstruction_loss(features, model.reconstruct(features))
    with record_function("backward"):
        loss.backward()
    with record_function("clip"):
        torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
    with record_function("optimizer"):
        optimizer.step()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="paper-mvtec", choices=presets.names())
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=2, help="profiled steps (after one warm-up step)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--top", type=int, default=15, help="ops listed")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, device, model, optimizer, images = build(args)
    trainable = [q for q in model.parameters() if q.requires_grad]
    autocast = autocast_factory(resolve_precision(args.precision, device), device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    load = os.getloadavg()[0]
    with keep_freed_memory(device.type == "cpu"):  # as train() runs its loop
        step(model, optimizer, images, trainable, cfg.train.grad_clip, autocast)  # warm-up
        t0 = time.perf_counter()
        with profile(activities=activities) as prof:
            for _ in range(args.steps):
                step(model, optimizer, images, trainable, cfg.train.grad_clip, autocast)
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    print(f"preset {args.preset}, batch {args.batch} @ {cfg.model.image_size}², {args.precision}, {device}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; {args.steps} profiled steps, {wall:.1f} s wall "
          f"(profiler overhead included); load average {load:.2f} → {os.getloadavg()[0]:.2f}")
    print(f"command: python benchmarks/profile_train_step.py {' '.join(sys.argv[1:] if argv is None else argv)}\n")
    phase = {e.key: e.cpu_time_total for e in events if e.key in PHASES}
    total = sum(phase.values())
    print("| phase | ms per step | share |\n|---|---|---|")
    for name in PHASES:
        print(f"| {name} | {phase.get(name, 0) / 1e3 / args.steps:.0f} | {100 * phase.get(name, 0) / total:.1f} % |")
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print()
    print(events.table(sort_by=sort, row_limit=args.top, max_name_column_width=40))


if __name__ == "__main__":
    main()
