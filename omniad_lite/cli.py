"""Command line: ``omniad-lite <command>`` (also ``python -m omniad_lite <command>``).

Commands: ``make-demo-data``, ``train``, ``eval``, ``predict``, ``presets``. Every handler lives here: it
parses its arguments and calls one library function, so everything the CLI does is also one call from
Python, and no library module ever sees an ``argparse`` namespace.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omniad-lite", description="Omni-AD anomaly detection kit")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("make-demo-data", help="write the offline demo dataset (MVTec layout)")
    s.add_argument("out", help="output folder")
    s.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("train", help="train a model; writes a run directory")
    s.add_argument("--preset", default="demo", help="preset name (see `omniad-lite presets`)")
    s.add_argument("--config", help="a config.json to start from instead of a preset")
    s.add_argument("--data-root", help="dataset root (default: the preset's; demo: generated demo data)")
    s.add_argument("--out", required=True, help="run directory to write")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2 (repeatable)")
    s.add_argument("--method", default="omniad", choices=["omniad", "knn"],
                   help="omniad (default): train Omni-AD; knn: fit the training-free kNN baseline on the same "
                        "teacher and data (PatchCore-style; settings as --set knn.coreset_ratio=0.1)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="delete an existing run in --out first")

    s = sub.add_parser("eval", help="evaluate a finished run on its test split")
    s.add_argument("--run", required=True, help="run directory")
    s.add_argument("--data-root", help="dataset root (default: the one recorded in the run)")
    s.add_argument("--protocol", default="kit", choices=["kit", "released"])
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=16)

    s = sub.add_parser("predict", help="score images with a trained run; writes heatmap PNGs and scores.csv")
    s.add_argument("--run", required=True, help="run directory")
    s.add_argument("images", nargs="+", help="image files")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--device", default="auto")

    sub.add_parser("presets", help="list the presets")
    return p


def config_from_args(args: argparse.Namespace):
    """The experiment of ``train``: a preset or a saved config.json, then ``--data-root`` and ``--set``."""
    from . import presets
    from .config import ExperimentConfig

    cfg = ExperimentConfig.load(args.config) if args.config else presets.get(args.preset)
    overrides = list(args.overrides or [])
    if args.data_root:
        overrides.insert(0, f"data.root={json.dumps(str(args.data_root))}")
    return cfg.with_overrides(overrides) if overrides else cfg


def cmd_make_demo_data(args: argparse.Namespace) -> None:
    from .data import make_demo_dataset

    make_demo_dataset(args.out, seed=args.seed)


def cmd_train(args: argparse.Namespace) -> None:
    """Train (or fit the kNN baseline), then print the final table and where the run is."""
    t0 = time.perf_counter()
    if args.method == "knn":
        result = _train_knn(args)
    else:
        from .training import train

        result = train(config_from_args(args), args.out, resume=args.resume, overwrite=args.overwrite)
    if result.evaluation is not None:
        print(result.metrics.round(2).to_string())
        print(f"run: {result.run_dir}  steps: {result.steps}  train: {result.train_time_s:.1f} s  "
              f"train+eval: {time.perf_counter() - t0:.1f} s")


def _train_knn(args: argparse.Namespace):
    """``train --method knn``: ``knn.*`` overrides go to the baseline's settings, the rest to the config."""
    from .baselines.fit import split_overrides, train_knn
    from .baselines.knn import KnnConfig

    if args.resume:
        raise ValueError("--resume does not apply to --method knn (it has no training steps); use --overwrite")
    _, rest, knn = split_overrides(["method=knn", *args.overrides])
    cfg = config_from_args(argparse.Namespace(**{**vars(args), "overrides": rest}))
    return train_knn(cfg, args.out, KnnConfig().with_overrides(knn), overwrite=args.overwrite)


def cmd_eval(args: argparse.Namespace) -> None:
    """Re-evaluate a finished run; rewrite its metrics.json and metrics.csv."""
    from .run import RunDir
    from .training.report import reevaluate

    result = reevaluate(args.run, data_root=args.data_root, protocol=args.protocol, device=args.device,
                        batch_size=args.batch_size)
    run = RunDir(args.run)
    print(result.table.round(2).to_string())
    print(f"wrote {run / RunDir.METRICS} and {run / RunDir.METRICS_CSV}")


def cmd_predict(args: argparse.Namespace) -> None:
    """Overlay PNGs (one colour scale for all images, ``[0, max]``) and ``scores.csv``."""
    from PIL import Image

    from .env import resolve_device
    from .evaluation.predict import predict, write_scores_csv
    from .run import load_run
    from .viz.overlays import heatmap_overlay

    paths = [Path(p) for p in args.images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {', '.join(missing)}")
    device = resolve_device(args.device)
    loaded = load_run(args.run, device=device)
    predictions = predict(loaded.model, [str(p) for p in paths], device=device)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    vmax = max(float(p.anomaly_map.max()) for p in predictions)
    names: dict[int, dict] = {}
    for i, (path, pred) in enumerate(zip(paths, predictions)):
        name, k = f"{path.stem}_heatmap.png", 1
        while any(n["heatmap"] == name for n in names.values()):  # same file name in different folders
            k += 1
            name = f"{path.stem}_{k}_heatmap.png"
        names[i] = {"heatmap": name}
        rgb = loaded.preprocess.load(path)
        Image.fromarray(heatmap_overlay(rgb, pred.anomaly_map, 0.0, vmax)).save(out_dir / name)
    write_scores_csv(predictions, out_dir / "scores.csv", names)
    print(f"wrote {len(predictions)} heatmaps and scores.csv to {out_dir}")


def cmd_presets(args: argparse.Namespace) -> None:
    from . import presets

    for name in presets.names():
        print(name)


COMMANDS = {"make-demo-data": cmd_make_demo_data, "train": cmd_train, "eval": cmd_eval, "predict": cmd_predict,
            "presets": cmd_presets}


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        print(f"omniad-lite {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0
