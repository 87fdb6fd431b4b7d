"""What ``model.image_size`` costs: train-step time and memory of a preset's model at several input sides.

Each (preset, side) runs in its own Python process: the model is built (random encoder weights: same speed), a
random batch made, one warm-up train step run (the training engine's step, :mod:`bench_model`), then
``--steps`` timed steps run. Reported: seconds per step and per image, and the step's memory: the peak of the
process's anonymous resident memory (Linux ``RssAnon``, sampled every millisecond by
:class:`bench_large_photos.AnonPeak`) during the timed steps minus its value before them (activations,
gradients and their temporaries; the weights and AdamW state already exist after the warm-up). From the
smallest and largest side, ``memory ≈ a + b·S²`` is fitted.

    python benchmarks/bench_resolution.py --preset demo --sizes 256 384 512 --batch-size 4 --steps 1
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def worker(preset: str, size: int, batch: int, steps: int) -> dict:
    import torch
    from bench_large_photos import AnonPeak
    from bench_model import build, time_train

    torch.manual_seed(0)
    cfg, _, model = build(preset, random_encoder=True, ffn=None)
    images = torch.randn(batch, 3, size, size)  # (B, 3, S, S)
    time_train(model, images, cfg, steps=1, warmup=0, device=torch.device("cpu"))  # warm-up: AdamW state exists
    with AnonPeak() as memory:
        seconds = time_train(model, images, cfg, steps=steps, warmup=0, device=torch.device("cpu"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"preset": preset, "size": size, "batch": batch, "s_per_step": seconds, "s_per_image": seconds / batch,
            "step_mib": memory.mib, "anon_before_mib": memory.start, "trainable_params": trainable,
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="demo")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 384, 512])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.preset, args.sizes[0], args.batch_size, args.steps)))
        return
    load = os.getloadavg()
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--worker", "--preset", args.preset, "--sizes", str(size),
               "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"# {args.preset} {size}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(f"{args.preset}, CPU, {rows[0]['threads']} threads, batch {args.batch_size}, {rows[0]['trainable_params']:,} "
          f"trainable parameters; load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print("| side | s / step | s / image | step memory (MiB) | step memory / image (MiB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['s_per_step']:.2f} | {r['s_per_image']:.2f} | {r['step_mib']:.0f} | "
              f"{r['step_mib'] / r['batch']:.0f} |")
    if len(rows) >= 2:
        (s0, m0), (s1, m1) = [(r["size"] ** 2, r["step_mib"]) for r in (rows[0], rows[-1])]
        b = (m1 - m0) / (s1 - s0)
        print(f"fit: step memory ≈ {m0 - b * s0:.0f} + {b * 256 ** 2:.0f}·(S/256)² MiB at batch {args.batch_size}; "
              f"time ratio {rows[-1]['size']}/{rows[0]['size']}: {rows[-1]['s_per_step'] / rows[0]['s_per_step']:.2f}x "
              f"(pixels {s1 / s0:.2f}x)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
