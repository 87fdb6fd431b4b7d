"""Command line: ``omniad-lite <command>`` (also ``python -m omniad_lite <command>``).

Commands: ``make-demo-data``, ``train``, ``eval``, ``predict``, ``presets``. Each one parses its arguments
here and calls one library function, so everything the CLI does is also one call from Python.
"""
from __future__ import annotations

import argparse
import sys


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


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "make-demo-data":
            from .data import make_demo_dataset
            make_demo_dataset(args.out, seed=args.seed)
        elif args.command == "train":
            from .training import train_cli
            train_cli(args)
        elif args.command == "eval":
            from .training import eval_cli
            eval_cli(args)
        elif args.command == "predict":
            from .evaluation import predict_cli
            predict_cli(args)
        elif args.command == "presets":
            from . import presets
            for name in presets.names():
                print(name)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        print(f"omniad-lite {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0
