"""Prediction throughput on this CPU: the kit's ``predict`` in PyTorch beside the exported model in ONNX Runtime.

For each model (``--presets``, random-init weights: same speed, nothing to download) the parent process saves
a run and exports it with :func:`omniad_lite.export.onnx.export_onnx`; then every (model, engine, batch) runs
in a fresh process, so its peak RSS is its own. All engines start from the same decoded PIL images (the demo
test images, at their original size) and return ``(S, S)`` maps and scores, fp32, with ``--threads`` threads:

- ``torch-predict``: :func:`omniad_lite.evaluation.prediction.predict` (resize + normalise per image, batched
  forward under ``torch.inference_mode``, ``original_size=False``), what a Python user calls;
- ``torch-forward`` (only when ``--engines`` names it): the forward and scoring alone
  (:func:`~omniad_lite.evaluation.inference.iter_maps`) on batches prepared beforehand, the floor of
  ``torch-predict``;
- ``onnxruntime``: :class:`~omniad_lite.export.onnx.OnnxScorer` (its session options) on uint8 batches resized
  with the kit's PIL resize, what a deployment without PyTorch runs;
- ``onnxruntime-default``: the same with ``onnxruntime.InferenceSession``'s default options, to show what the
  scorer's options change.

Each process scores ``--images`` images ``--repeats`` times after one untimed pass and reports the median
images/s, its peak RSS from loading the model on (decoding the test images left out) and how much that peak
grew while predicting (over the level after loading and the untimed pass).

    python benchmarks/bench_predict.py --presets demo,paper-mvtec --batches 1,8 --threads 2
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = ("torch-predict", "torch-forward", "onnxruntime", "onnxruntime-default")
DEFAULT_ENGINES = "torch-predict,onnxruntime,onnxruntime-default"
KIB = 1024
MIB = 2 ** 20


def reset_peak_rss() -> None:
    """Restart the peak-RSS count (Linux: ``VmHWM``), so that decoding the test images is not in it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak includes everything the process did


def peak_rss_mib() -> float:
    """The process's peak RSS since :func:`reset_peak_rss` (``VmHWM``; ``ru_maxrss`` where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KIB / MIB  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB / MIB


def demo_images(n: int) -> list:
    """``n`` decoded demo test images (PIL, original size), cycling through the classes."""
    from omniad_lite.data import default_cache_dir, demo_root, load_samples
    from omniad_lite.data.images import decode_image

    samples = load_samples(demo_root(default_cache_dir()), "mvtec", "test", None)
    step = max(1, len(samples) // n)
    return [decode_image(s.image_path) for s in samples[::step][:n]]


def export_model(preset: str, folder: Path) -> tuple[Path, Path]:
    """Save a random-init run of ``preset`` in ``folder`` and export it; ``(run dir, .onnx path)``."""
    import torch

    from omniad_lite import RunDir, presets
    from omniad_lite.export.onnx import export_onnx
    from omniad_lite.model import build_model

    cfg = presets.get(preset)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, encoder_weights=None))
    torch.manual_seed(0)
    run = RunDir(folder / preset)
    run.save_config(cfg)
    run.save_model(build_model(cfg.model).eval())
    return run.path, export_onnx(run, folder / f"{preset}.onnx")


def engine_fn(engine: str, run_dir: str, onnx_path: str, batch: int, threads: int):
    """A function ``images -> None`` that scores a list of PIL images with ``engine``."""
    import numpy as np
    import torch

    from omniad_lite.data.images import preprocess_image

    torch.set_num_threads(threads)
    if engine.startswith("onnxruntime"):
        import onnxruntime as ort

        from omniad_lite.export.onnx import INPUT, OnnxScorer

        scorer = OnnxScorer(onnx_path, threads=threads)
        if engine == "onnxruntime-default":
            scorer.session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        size = scorer.image_size

        def run_onnx(images: list) -> None:
            for i in range(0, len(images), batch):
                chunk = np.stack([preprocess_image(im, size) for im in images[i:i + batch]])  # (B, S, S, 3)
                scorer.session.run(None, {INPUT: np.ascontiguousarray(chunk.transpose(0, 3, 1, 2))})  # (B, 3, S, S)
        return run_onnx
    from omniad_lite import load_run
    from omniad_lite.evaluation.inference import iter_maps
    from omniad_lite.evaluation.prediction import predict

    model = load_run(run_dir, device="cpu").model
    if engine == "torch-predict":
        return lambda images: predict(model, images, batch_size=batch, device="cpu", original_size=False)
    prepared: dict[int, list] = {}

    def run_forward(images: list) -> None:
        key = id(images)  # prepared once per image list, outside the timing of later passes
        if key not in prepared:
            pre = model.preprocess
            tensors = [pre.normalise(pre.from_pil(im)) for im in images]  # (3, S, S) each
            prepared[key] = [torch.stack(tensors[i:i + batch]) for i in range(0, len(tensors), batch)]
        for _ in iter_maps(model, prepared[key], device="cpu"):
            pass
    return run_forward


def worker(args) -> None:
    """One (model, engine, batch) in this process: print one JSON line."""
    images = demo_images(args.images)
    reset_peak_rss()  # from here: the model (or session) loaded, then predicting
    score = engine_fn(args.engine, args.run_dir, args.onnx, args.batch, args.threads)
    score(images)  # untimed: first-call allocations, graph warm-up (and torch-forward's preparation)
    loaded = peak_rss_mib()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        score(images)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"images_per_s": len(images) / statistics.median(times), "times_s": times,
                      "peak_rss_mib": peak_rss_mib(), "rss_growth_mib": peak_rss_mib() - loaded}))


def run_all(args, folder: Path) -> list[dict]:
    rows = []
    for preset in args.presets:
        run_dir, onnx_path = export_model(preset, folder)
        for batch in args.batches:
            for engine in args.engines:
                cmd = [sys.executable, __file__, "--worker", engine, "--run-dir", str(run_dir), "--onnx",
                       str(onnx_path), "--batch", str(batch), "--threads", str(args.threads), "--images",
                       str(args.images), "--repeats", str(args.repeats)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                row = {"preset": preset, "engine": engine, "batch": batch, **json.loads(out.strip().splitlines()[-1])}
                rows.append(row)
                print(f"{preset} {engine} batch {batch}: {row['images_per_s']:.2f} images/s "
                      f"(load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    return rows


def report(args, rows: list[dict], load_start: float) -> list[str]:
    import onnxruntime
    import torch

    lines = [(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads, torch "
              f"{torch.__version__}, onnxruntime {onnxruntime.__version__}, fp32; {args.images} demo images × "
              f"{args.repeats} repeats per row (after 1 untimed), fresh process per row; load average "
              f"{load_start:.2f} → {os.getloadavg()[0]:.2f}"),
             f"command: python benchmarks/bench_predict.py {' '.join(args.argv)}", "",
             "| model | batch | engine | images/s | × torch-predict | peak RSS | RSS growth while predicting |",
             "|---|---|---|---|---|---|---|"]
    base = {(r["preset"], r["batch"]): r["images_per_s"] for r in rows if r["engine"] == "torch-predict"}
    for r in rows:
        ref = base.get((r["preset"], r["batch"]))
        ratio = f"{r['images_per_s'] / ref:.2f}×" if ref else "—"
        lines.append(f"| {r['preset']} | {r['batch']} | {r['engine']} | {r['images_per_s']:.2f} | {ratio} | "
                     f"{r['peak_rss_mib']:.0f} MiB | {r['rss_growth_mib']:.0f} MiB |")
    return lines


def main(argv: list[str] | None = None) -> list[str] | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="demo,paper-mvtec", help="comma-separated preset names")
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--engines", default=DEFAULT_ENGINES, help=f"comma-separated, from {ENGINES}")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and ONNX Runtime intra-op threads")
    p.add_argument("--images", type=int, default=16, help="images per timed pass")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per row")
    p.add_argument("--out", help="also write the table to this file")
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    p.add_argument("--onnx", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.worker:
        args.engine = args.worker
        return worker(args)
    args.presets = [s.strip() for s in args.presets.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    args.engines = [e.strip() for e in args.engines.split(",")]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown:
        raise SystemExit(f"--engines: unknown {unknown}; choose from {ENGINES}")
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        lines = report(args, run_all(args, Path(tmp)), load_start)
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return lines


if __name__ == "__main__":
    main()
