"""Command line: ``omniad-lite <command>`` (also ``python -m omniad_lite <command>``).

Commands: ``make-demo-data``, ``train``, ``eval``, ``predict``, ``presets``. Every handler lives here: it
parses its arguments and calls one library function, so everything the CLI does is also one call from
Python, and no library module ever sees an ``argparse`` namespace.

Any error ends the command with one line on stderr and exit code 2 (130 when interrupted): the kit's own
errors name the file or value and the fix; an unexpected one also names its type and where it was raised.
``--debug`` (before or after the command) shows the full traceback instead.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omniad-lite", description="Omni-AD anomaly detection kit")
    p.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on an error, show the full traceback")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("make-demo-data", parents=[common], help="write the offline demo dataset (MVTec layout)")
    s.add_argument("out", help="output folder")
    s.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("train", parents=[common], help="train a model; writes a run directory")
    s.add_argument("--preset", default="demo", help="preset name (see `omniad-lite presets`)")
    s.add_argument("--config", help="a config.json to start from instead of a preset")
    s.add_argument("--data-root", help="dataset root (default: the preset's; demo: generated demo data)")
    s.add_argument("--out", required=True, help="run directory to write")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2 (repeatable)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="delete an existing run in --out first")

    s = sub.add_parser("eval", parents=[common], help="evaluate a finished run on its test split")
    s.add_argument("--run", required=True, help="run directory")
    s.add_argument("--data-root", help="dataset root (default: the one recorded in the run)")
    s.add_argument("--protocol", default="kit", choices=["kit", "released"])
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--replace", action="store_true",
                   help="rewrite the run's metrics.json/metrics.csv (default: write beside them, in evaluations/)")

    s = sub.add_parser("predict", parents=[common],
                       help="score images with a trained run; writes heatmap PNGs and scores.csv")
    s.add_argument("--run", required=True, help="run directory")
    s.add_argument("images", nargs="+", help="image files")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--device", default="auto")

    sub.add_parser("presets", parents=[common], help="list the presets")
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
    """Train, then print the final table and where the run is."""
    from .training import train

    t0 = time.perf_counter()
    result = train(config_from_args(args), args.out, resume=args.resume, overwrite=args.overwrite)
    if result.evaluation is not None:
        print(result.metrics.round(2).to_string())
        print(f"run: {result.run_dir}  steps: {result.steps}  train: {result.train_time_s:.1f} s  "
              f"train+eval: {time.perf_counter() - t0:.1f} s")


def cmd_eval(args: argparse.Namespace) -> None:
    """Re-evaluate a finished run; write the result beside its metrics (or over them with ``--replace``)."""
    from .training.report import reevaluate

    result, written = reevaluate(args.run, data_root=args.data_root, protocol=args.protocol, device=args.device,
                                 batch_size=args.batch_size, replace=args.replace)
    print(result.table.round(2).to_string())
    print(f"wrote {' and '.join(str(p) for p in written)}")


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


def error_line(e: BaseException) -> str:
    """One line for an error: the kit's message as is; for an error raised outside the kit (a library, a
    bug), also its type, the kit's frame that led to it and the ``--debug`` hint."""
    lines = str(e).strip().splitlines()
    message = lines[0] if lines else ""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(PACKAGE_DIR)]
    if frames and ours and ours[-1] is frames[-1] and message:
        return message + (" …" if len(lines) > 1 else "")
    where = f" (in {Path(ours[-1].filename).name}:{ours[-1].lineno})" if ours else ""
    return (f"unexpected {type(e).__name__}{where}: {message or 'no message'}; rerun with --debug for the "
            f"full traceback and report it if the cause is not clear")


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        hint = "; continue it with --resume" if args.command == "train" else ""
        print(f"omniad-lite {args.command}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if getattr(args, "debug", False):
            raise
        print(f"omniad-lite {args.command}: error: {error_line(e)}", file=sys.stderr)
        return EXIT_ERROR
    return 0
