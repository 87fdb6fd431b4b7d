"""Side by side with the released code: train-step images/s of the kit and of github easyoo/Omni-AD.

Both run in this venv on the same machine, alternately: every round starts one fresh process per variant
(the order rotates from round to round), each builds its model, takes ``--warmup`` untimed and ``--steps``
timed train steps on random images and reports its step times and peak RSS. The table gives each variant's
median images/s and, per round, its speed relative to the released code measured in the same round (the
median and range of those ratios): on a shared machine the ratio survives load that the absolute figures do
not. Setting: the ``paper-mvtec`` model (resnet34, decoder 3/9/9/7), batch 8 @ 256², random-init teacher, fp32
unless the variant says otherwise.

- ``kit``: the training engine's step (``TrainStep`` → ``optimizer_step``: backward, clip 5, AdamW from
  ``build_optimizer``; lr scheduler) inside ``keep_freed_memory`` as ``train`` runs it, default model (learned
  FFN); ``kit-bf16``: the same under bf16 autocast (``train.precision=bf16``); ``kit-resampled``:
  ``model.ffn=resampled``, the released FFN behaviour; ``kit-system-malloc``: without ``keep_freed_memory``.
- ``released``: the released ``OmniAD`` (``model/omniad.py``) with its optimiser (``optim.get_optim``, AdamW,
  weight-decay groups), ``L2Loss`` and step (forward, backward, ``dispatch_clip_grad`` 5.0, step), as its
  trainer runs them with ``scaler='none'``; ``released-keep-malloc``: the same with glibc told (environment
  tunables) what ``keep_freed_memory`` tells it, to show how much of the difference is the allocator.

The released code is not part of this kit: fetch it (``git clone https://github.com/easyoo/Omni-AD``, commit
d85c5f4) anywhere outside the repository and pass its folder. Only its model, loss and optimiser modules are
imported; ``tensorboardX`` (imported by its utilities, unused here) is replaced by an empty module when absent,
and timm ≥ 1.0's renamed ``NAdamLegacy``/``RAdamLegacy`` are aliased to the names its ``optim`` imports (unused).

    python benchmarks/bench_vs_released.py --released /path/to/Omni-AD --rounds 4

``--parity`` first checks that both compute the same function: the released weights are copied into a kit
model (``ffn=resampled``) and the eval forwards compared (max abs difference of the reconstructions).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from argparse import Namespace
from pathlib import Path

import torch

VARIANTS = ("kit", "kit-bf16", "kit-resampled", "kit-system-malloc", "released", "released-keep-malloc")
# glibc's environment tunables for the policy the kit sets with mallopt while training (training/allocator.py)
KEEP_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2 ** 31 - 1)}
DEPTHS = (3, 9, 9, 7)
KIB = 1024


def load_released(root: str) -> dict:
    """Import the released code's ``model``, ``optim`` and ``loss`` packages from ``root``."""
    root_path = Path(root).resolve()
    if not (root_path / "model" / "omniad.py").is_file():
        raise SystemExit(f"--released {root}: no model/omniad.py there; clone github easyoo/Omni-AD (d85c5f4) "
                         f"outside this repository and pass that folder")
    if importlib.util.find_spec("tensorboardX") is None:  # util/util.py imports it at the top; unused here
        stub = types.ModuleType("tensorboardX")
        stub.SummaryWriter = object
        sys.modules["tensorboardX"] = stub
    import timm.optim.nadam
    import timm.optim.radam

    for module, old, new in ((timm.optim.nadam, "Nadam", "NAdamLegacy"), (timm.optim.radam, "RAdam", "RAdamLegacy")):
        if not hasattr(module, old) and hasattr(module, new):  # renamed in timm 1.0; imported, unused, by optim/
            setattr(module, old, getattr(module, new))
    sys.path.insert(0, str(root_path))
    cwd = os.getcwd()
    os.chdir(root_path)  # its registries glob 'model/*.py' and 'loss/*.py' relative to the working directory
    try:
        import loss  # noqa: F401  (registers L2Loss)
        import model as released_model
        import optim as released_optim
        from loss.base_loss import L2Loss
    finally:
        os.chdir(cwd)
    return dict(model=released_model, optim=released_optim, L2Loss=L2Loss)


def build_released(mods: dict):
    teacher = Namespace(name="timm_resnet34", kwargs=dict(pretrained=False, checkpoint_path=None, strict=False,
                                                          features_only=True, out_indices=[1, 2, 3]))
    spec = Namespace(name="omniAD", kwargs=dict(pretrained=False, checkpoint_path="", strict=True, model_t=teacher,
                                                model_s=dict(depths_decoder=list(DEPTHS))))
    return mods["model"].get_model(spec)


def released_step_fn(mods: dict, batch: int):
    """The released trainer's step: forward, L2Loss, zero_grad, backward, clip 5.0 (norm), AdamW step."""
    from timm.utils import dispatch_clip_grad

    net = build_released(mods).train()
    opt = mods["optim"].get_optim(dict(name="adamw", betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4,
                                       amsgrad=False), net, lr=1e-3 * batch / 16)
    l2 = mods["L2Loss"](lam=1.0)

    def step(images: torch.Tensor) -> None:
        feats_t, feats_s = net(images)
        loss = l2(feats_t, feats_s)
        opt.zero_grad()
        loss.backward()
        dispatch_clip_grad(net.parameters(), value=5.0)
        opt.step()
    return step, net


def kit_step_fn(variant: str, batch: int):
    """The training engine's step for ``variant`` (see the module docstring)."""
    from omniad_lite import presets
    from omniad_lite.model import build_model, reconstruction_loss
    from omniad_lite.training.optim import build_optimizer, build_scheduler
    from omniad_lite.training.step import TrainStep, autocast_factory, optimizer_step, resolve_precision

    overrides = ["model.encoder_weights=null"] + (["model.ffn=resampled"] if variant == "kit-resampled" else [])
    cfg = presets.get("paper-mvtec").with_overrides(overrides)
    device = torch.device("cpu")
    model = build_model(cfg.model).train()
    opt = build_optimizer(cfg.train, model, batch_size=batch)
    sched = build_scheduler(opt, cfg.train, total_steps=10 ** 9, steps_per_epoch=1)
    autocast = autocast_factory(resolve_precision("bf16" if variant == "kit-bf16" else "fp32", device), device)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    train_step = TrainStep(model, reconstruction_loss)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def step(images: torch.Tensor) -> None:
        with autocast():
            loss = train_step(images)
        optimizer_step(loss, opt, scaler, trainable, cfg.train.grad_clip)
        sched.step()
    return step, model


def worker(args) -> None:
    """One variant in this process: print a JSON line with step wall and CPU times and the peak RSS."""
    from omniad_lite.training.allocator import keep_freed_memory

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.worker.startswith("released"):
        step, _ = released_step_fn(load_released(args.released), args.batch)
    else:
        step, _ = kit_step_fn(args.worker, args.batch)
    images = torch.randn(args.batch, 3, args.size, args.size)
    wall, cpu = [], []
    with keep_freed_memory(args.worker in ("kit", "kit-bf16", "kit-resampled")):
        for i in range(args.warmup + args.steps):
            t0, c0 = time.perf_counter(), time.process_time()
            step(images)
            if i >= args.warmup:
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB / 2 ** 20
    print(json.dumps(dict(variant=args.worker, step_s=wall, cpu_s=cpu, peak_rss_mib=rss,
                          threads=torch.get_num_threads())))


def released_to_kit(state: dict) -> dict:
    """Rename a released ``OmniAD`` state_dict to the kit's names (docs in the kit modules' name tables)."""
    neck = {"conv1": "down1.0", "bn1": "down1.1", "conv2": "down2.0", "bn2": "down2.1", "conv21": "lateral2.0",
            "bn21": "lateral2.1", "conv31": "lateral3.0", "bn31": "lateral3.1", "convf": "fuse.0",
            "bnf": "fuse.1", "bn_layer": "blocks"}
    block = {"toProxy.learnable_q": "global_branch.query_tokens", "toProxy.learnable_kv": "global_branch.kv_tokens",
             "toProxy.q_2": "global_branch.attn_b.q", "toProxy.kv_y": "global_branch.attn_b.kv",
             "toProxy.q": "global_branch.attn_a.q", "toProxy.kv_x": "global_branch.attn_a.kv",
             "toProxy.pe2": "global_branch.attn_a.score_bias", "toProxy.pe1": "global_branch.attn_b.score_bias",
             "conv33.dconv.0": "local_branch.conv3.depthwise", "conv33.pconv.0": "local_branch.conv3.pointwise",
             "conv55.dconv.0": "local_branch.conv5.depthwise", "conv55.pconv.0": "local_branch.conv5.pointwise",
             "mlp.0": "local_branch.fuse", "l2": "merge_out", "l": "merge_in"}
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head == "net_t":
            out[f"encoder.body.{rest}"] = value
        elif head == "Neck":
            name, _, tail = rest.partition(".")
            out[f"neck.{neck[name]}.{tail}"] = value
        else:  # net_s.layers_up.{i}.(upsample.expand|upsample.norm|blocks.{j}.blocks.0.<block key>)
            parts = rest.split(".")
            stage = parts[1]
            if parts[2] == "upsample":
                sub = "proj" if parts[3] == "expand" else parts[3]
                out[f"decoder.stages.{stage}.upsample.{sub}.{parts[4]}"] = value
                continue
            inner = ".".join(parts[6:])
            for old, new in block.items():  # a whole dotted name: "toProxy.q" never matches "toProxy.q_2"
                if inner == old or inner.startswith(old + "."):
                    inner = new + inner[len(old):]
                    break
            if "tokens" in inner or "score_bias" in inner:
                value = value.squeeze(0)  # (1, N, C) → (N, C); (1, h, ., .) → (h, ., .)
            out[f"decoder.stages.{stage}.blocks.{parts[3]}.{inner}"] = value
    return out


def parity(root: str, batch: int, size: int) -> float:
    """Max |kit - released| of the eval reconstructions, released weights copied into a kit model."""
    from omniad_lite import presets
    from omniad_lite.model import build_model

    torch.manual_seed(0)
    net = build_released(load_released(root)).eval()
    for p in net.parameters():  # non-zero tokens and biases, so every path is exercised
        if p.requires_grad:
            p.data.normal_(0, 0.05)
    cfg = presets.get("paper-mvtec").with_overrides(["model.encoder_weights=null", "model.ffn=resampled"])
    kit = build_model(cfg.model).eval()
    kit.load_state_dict(released_to_kit(net.state_dict()), strict=True)
    images = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        torch.manual_seed(1)
        _, ref = net(images)
        torch.manual_seed(1)
        torch.randn(batch, (size // 32) ** 2, 512)  # released add_jitter draws its noise even at scale 0
        _, ours = kit(images)
    return max(float((a - b).abs().max()) for a, b in zip(ours, ref))


def run_rounds(args) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {v: [] for v in args.variants}
    for r in range(args.rounds):
        order = args.variants[r % len(args.variants):] + args.variants[:r % len(args.variants)]
        for variant in order:
            cmd = [sys.executable, __file__, "--worker", variant, "--released", args.released, "--batch",
                   str(args.batch), "--size", str(args.size), "--steps", str(args.steps), "--warmup", str(args.warmup)]
            cmd += ["--threads", str(args.threads)] if args.threads else []
            env = {**os.environ, **(KEEP_MALLOC_ENV if variant == "released-keep-malloc" else {})}
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            res = json.loads(out.strip().splitlines()[-1])
            res["median_s"] = statistics.median(res["step_s"])
            res["median_cpu_s"] = statistics.median(res["cpu_s"])
            results[variant].append(res)
            print(f"round {r + 1}/{args.rounds} {variant}: {args.batch / res['median_s']:.2f} images/s "
                  f"(load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    return results


def report(args, results: dict[str, list[dict]], load_start: float, parity_diff: float | None) -> list[str]:
    lines = [f"torch {torch.__version__}, {os.cpu_count()} CPUs, {results[args.variants[0]][0]['threads']} threads; "
             f"paper-mvtec model, batch {args.batch} @ {args.size}², random-init teacher; {args.rounds} rounds × "
             f"{args.steps} timed steps (after {args.warmup} warm-up) per variant, fresh process each; load "
             f"average {load_start:.2f} → {os.getloadavg()[0]:.2f}",
             f"command: python benchmarks/bench_vs_released.py {' '.join(args.argv)}"]
    if parity_diff is not None:
        lines.append(f"parity (eval forward, released weights in the kit model, ffn=resampled): max |Δ| = "
                     f"{parity_diff:.2e}")
    lines += ["", "| variant | train images/s (median) | × released (wall), per round: median (min–max) | "
                  "× released (CPU time) | peak RSS |", "|---|---|---|---|---|"]
    base = results.get("released")
    for v in args.variants:
        ips = statistics.median(args.batch / res["median_s"] for res in results[v])
        ratio = cpu_ratio = "—"
        if base and v != "released":
            ratios = [b["median_s"] / res["median_s"] for res, b in zip(results[v], base)]
            ratio = f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"
            cpu = [b["median_cpu_s"] / res["median_cpu_s"] for res, b in zip(results[v], base)]
            cpu_ratio = f"{statistics.median(cpu):.2f}×"
        rss = max(res["peak_rss_mib"] for res in results[v])
        lines.append(f"| {v} | {ips:.2f} | {ratio} | {cpu_ratio} | {rss / 1024:.1f} GiB |")
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--released", required=True, help="folder of a clone of github easyoo/Omni-AD")
    p.add_argument("--variants", default="kit,released", help=f"comma-separated, from {VARIANTS}")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=2, help="timed train steps per variant and round")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per worker (default: torch's); 1 gives stable CPU-time ratios on a busy machine")
    p.add_argument("--parity", action="store_true", help="first compare the eval forwards (see the docstring)")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.worker:
        return worker(args)
    args.variants = [v.strip() for v in args.variants.split(",")]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {VARIANTS}")
    load_start = os.getloadavg()[0]
    parity_diff = parity(args.released, 2, args.size) if args.parity else None
    print("\n".join(report(args, run_rounds(args), load_start, parity_diff)))


if __name__ == "__main__":
    main()
