"""Command line: ``omniad-lite <command>`` (also ``python -m omniad_lite <command>``).

Commands: ``make-demo-data``, ``train``, ``eval``, ``predict``, ``calibrate``, ``export``, ``submission``,
``presets``.
Every handler lives here: it parses its arguments and calls one library function, so everything the CLI
does is also one call from Python, and no library module ever sees an ``argparse`` namespace.

Any error ends the command with one line on stderr and exit code 2 (130 when interrupted): the kit's own
errors (:class:`~omniad_lite.errors.OmniADError`) and OS errors (a missing file, a permission) print their
message, which names the file or value and the fix; anything else (a bug) also prints its type, where it was
raised and the ``--debug`` hint. ``--debug`` (before or after the command) shows the full traceback instead.

The handlers import the library when they run (lazily), so that ``--help`` and ``presets`` answer without
importing torch, which takes seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from . import presets
from .config import METHODS, ExperimentConfig
from .errors import ConfigError, OmniADError

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
    s.add_argument("--method", choices=list(METHODS),
                   help="omniad (default): train Omni-AD; knn: fit the training-free kNN baseline on the same "
                        "teacher and data (PatchCore-style; settings as --set knn.coreset_ratio=0.1); the same "
                        "as --set method=knn")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="delete an existing run in --out first")

    s = sub.add_parser("eval", parents=[common], help="evaluate a finished run on its test split")
    s.add_argument("--run", required=True, help="run directory")
    s.add_argument("--data-root", help="dataset root (default: the one recorded in the run)")
    s.add_argument("--protocol", default="kit", choices=["kit", "released", "mvtec_ad2"],
                   help="kit (exact), released (the released code's), mvtec_ad2 (AU-PRO@0.05 and SegF1 on test_public)")
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--replace", action="store_true",
                   help="rewrite the run's metrics.json/metrics.csv (default: write beside them, in evaluations/)")

    s = sub.add_parser("predict", parents=[common],
                       help="decide normal/anomalous per image; writes overlays and scores.csv")
    s.add_argument("--run", required=True, help="run directory")
    s.add_argument("images", nargs="+", help="image files and/or folders of images")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--class", dest="cls_name", help="class whose threshold decides (default: the run's only "
                   "class, else a folder of the path named like a class, else the pooled threshold)")
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=16)

    s = sub.add_parser("calibrate", parents=[common], help="re-choose a run's thresholds (method, false-positive rate)")
    s.add_argument("--run", required=True, help="run directory")
    s.add_argument("--method", choices=["fpr", "f1"], help="fpr: held-out normals at --fpr; f1: F1-optimal on test")
    s.add_argument("--fpr", type=float, help="target false-positive rate, e.g. 0.01")
    s.add_argument("--rescore", action="store_true", help="score the images again instead of reusing saved scores")
    s.add_argument("--device", default="auto")

    s = sub.add_parser("export", parents=[common], help="export a run for deployment (ONNX)")
    s.add_argument("--run", required=True, help="run directory")
    s.add_argument("--format", default="onnx", choices=["onnx"])
    s.add_argument("--out", required=True, help="output file, e.g. model.onnx")

    _add_submission_parser(sub, common)
    sub.add_parser("presets", parents=[common], help="list the presets")
    return p


def config_from_args(args: argparse.Namespace):
    """The experiment of ``train``: a preset or a saved config.json, then ``--data-root`` and ``--set``."""
    cfg = ExperimentConfig.load(args.config) if args.config else presets.get(args.preset)
    overrides = list(args.overrides or [])
    if getattr(args, "method", None):
        overrides.insert(0, f"method={args.method}")
    if args.data_root:
        overrides.insert(0, f"data.root={json.dumps(str(args.data_root))}")
    return cfg.with_overrides(overrides) if overrides else cfg


def cmd_make_demo_data(args: argparse.Namespace) -> None:
    from .data import make_demo_dataset

    make_demo_dataset(args.out, seed=args.seed)


def cmd_train(args: argparse.Namespace) -> None:
    """Train the config's method (:func:`omniad_lite.train`), then print the final table and where the run is."""
    from .methods import split_settings, train

    t0 = time.perf_counter()
    rest, settings = split_settings(list(args.overrides))
    cfg = config_from_args(argparse.Namespace(**{**vars(args), "overrides": rest}))
    if args.resume and cfg.method != "omniad":
        raise ConfigError(f"--resume does not apply to --method {cfg.method} (it has no training steps); use "
                          f"--overwrite")
    result = train(cfg, args.out, settings=settings, resume=args.resume, overwrite=args.overwrite)
    if result.evaluation is not None:
        print(result.evaluation.table.round(2).to_string())
        print(f"run: {result.run_dir}  steps: {result.steps}  train: {result.train_time_s:.1f} s  "
              f"train+eval: {time.perf_counter() - t0:.1f} s")
        print(f"decision thresholds: {result.run_dir / 'thresholds.json'} (re-choose: omniad-lite calibrate)")


def cmd_eval(args: argparse.Namespace) -> None:
    """Re-evaluate a finished run; write the result beside its metrics (or over them with ``--replace``)."""
    from .evaluation.evaluator import evaluate

    record = "replace" if args.replace else "beside"
    result = evaluate(args.run, args.data_root, protocol=args.protocol, device=args.device,
                      batch_size=args.batch_size, record=record)
    print(result.table.round(2).to_string())
    print(f"wrote {', '.join(str(f) for f in result.files)}")


def cmd_predict(args: argparse.Namespace) -> None:
    """Overlays at each image's resolution, ``scores.csv`` and a printed decision table."""
    from .predict_folder import SCORES_CSV, format_table, predict_to_folder

    table = predict_to_folder(args.run, args.images, args.out, cls_name=args.cls_name, device=args.device,
                              batch_size=args.batch_size)
    print(format_table(table))
    errors = int((table["decision"] == "error").sum())
    print(f"wrote {len(table) - errors} overlays and {SCORES_CSV} to {args.out}"
          + (f"; {errors} unreadable file(s), see the error rows" if errors else ""))


def cmd_calibrate(args: argparse.Namespace) -> None:
    """Rewrite thresholds.json with another method / false-positive rate; print the thresholds."""
    import pandas as pd

    from .evaluation.calibration import calibrate

    thresholds = calibrate(args.run, method=args.method, fpr=args.fpr, rescore=args.rescore, device=args.device)
    print(pd.DataFrame(thresholds.summary()).drop(columns="warning").to_string(index=False))
    print(f"method {thresholds.method}, fpr {thresholds.fpr}: wrote {Path(args.run) / 'thresholds.json'}")


def cmd_export(args: argparse.Namespace) -> None:
    """Write an ONNX model (image batch → anomaly map, score) with the thresholds in its metadata."""
    from .export.onnx import export_onnx

    path = export_onnx(args.run, args.out)
    print(f"wrote {path}")


def _add_submission_parser(sub, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("submission", parents=[common],
                       help="MVTec AD 2: write a private split's maps and masks for the evaluation server, or "
                            "check them")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", help="run directory trained on MVTec AD 2: write its submission")
    g.add_argument("--check", metavar="DIR", help="check a submission folder against --data-root before upload")
    s.add_argument("--split", choices=["test_private", "test_private_mixed"], help="private split to write")
    s.add_argument("--out", help="submission folder to write (both splits may go into the same folder)")
    s.add_argument("--data-root", help="the MVTec AD 2 root (default for --run: the run's data.root)")
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=16)


def cmd_submission(args: argparse.Namespace) -> None:
    """``submission --run RUN --split S --out DIR`` writes; ``submission --check DIR --data-root ROOT`` validates."""
    from .evaluation.submission import check_submission, write_submission

    if args.check:
        if not args.data_root:
            raise ValueError("submission --check needs --data-root, the MVTec AD 2 folder the maps were made from")
        report = check_submission(args.check, args.data_root)
        print(f"ok: {args.check}: {report['images']} maps and masks of {', '.join(report['splits'])} for "
              f"{len(report['classes'])} class(es) match {args.data_root}")
        if not report["complete"]:
            print("note: the evaluation server expects both test_private and test_private_mixed of all 8 scenarios")
        return
    if not (args.split and args.out):
        raise ValueError("submission --run needs --split (test_private or test_private_mixed) and --out DIR")
    written = write_submission(args.run, args.split, args.out, data_root=args.data_root, device=args.device,
                               batch_size=args.batch_size)
    thresholds = ", ".join(f"{c} {t:.4f}" for c, t in written["thresholds"].items())
    print(f"wrote {written['images']} float16 maps and masks of {args.split} to {written['out']} (thresholds from "
          f"the validation normals: {thresholds}); check with: omniad-lite submission --check {args.out} "
          f"--data-root ROOT")


def cmd_presets(args: argparse.Namespace) -> None:
    for name in presets.names():
        print(name)


COMMANDS = {"make-demo-data": cmd_make_demo_data, "train": cmd_train, "eval": cmd_eval, "predict": cmd_predict,
            "calibrate": cmd_calibrate, "export": cmd_export, "submission": cmd_submission, "presets": cmd_presets}


def error_line(e: BaseException) -> str:
    """One line for an error: the message of the kit's own errors and of OS errors as is; for anything else
    (a bug, a library's error), also its type, the kit's frame that led to it and the ``--debug`` hint."""
    lines = str(e).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(e, (OmniADError, OSError)) and message:
        return message + (" …" if len(lines) > 1 else "")
    ours = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve().is_relative_to(PACKAGE_DIR)]
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
