"""Evaluation inside and after training, ``metrics.json``/``metrics.csv``, and the train/eval commands.

``metrics.json`` holds the *final* model's metrics as the headline (``final``) and, separately and
labelled as such, the released code's protocol (``best_over_training``): for each metric the best
class-mean over all periodic test evaluations (``train.eval_every`` epochs) and the final one. The
released code (github easyoo/Omni-AD, ADer's trainer) reports only the latter, which selects on the test
set.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .checkpoint import atomic_write
from .config import ExperimentConfig
from .train_state import METRICS_CSV, METRICS_FILE

MEAN_ROW = "mean"
BEST_NOTE = ("released code's protocol: for each metric separately, the best class-mean over all test-set "
             "evaluations during training (selection on the test set; the headline is 'final')")


def _test_dataset(cfg: ExperimentConfig):
    from .data import dataset_from_config
    from .model import encoder_mean_std

    mean, std = encoder_mean_std(cfg.model.encoder)
    return dataset_from_config(cfg.data, "test", mean, std)


def _evaluate(model, cfg: ExperimentConfig, device, progress: bool, protocol: str = "kit",
              batch_size: int | None = None) -> pd.DataFrame:
    from .evaluation import evaluate

    # A class whose test split has no anomalous image (custom data) cannot define AUROC & co.: report NaN for
    # it (None in metrics.json) and say so, rather than failing at the end of a long run.
    table = evaluate(model, _test_dataset(cfg), batch_size=batch_size or cfg.train.batch_size, device=device,
                     protocol=protocol, progress=progress, allow_undefined=True)
    undefined = [c for c in table.index if c != MEAN_ROW and table.loc[c].isna().any()]
    if undefined:
        print(f"note: metrics undefined (NaN) for class(es) {undefined}: their test split has no anomalous "
              f"image or no anomalous pixel; add some to evaluate them", file=sys.stderr)
    return table


def _plain(v) -> float | None:
    """A JSON-safe number: NaN (a metric a class cannot define) becomes ``None``."""
    return None if pd.isna(v) else float(v)


def _mean_row(table: pd.DataFrame) -> dict[str, float | None]:
    row = table.loc[MEAN_ROW] if MEAN_ROW in table.index else table.mean(numeric_only=True)
    return {k: _plain(v) for k, v in row.items()}


def periodic_evaluation(model, cfg: ExperimentConfig, step: int, epoch: int, device, progress: bool) -> dict:
    """Evaluate during training; returns ``{step, epoch, mean}`` (plain values, stored in train_state.pt)."""
    table = _evaluate(model, cfg, device, progress)
    return {"step": step, "epoch": epoch, "mean": _mean_row(table)}


def best_over(evaluations: list[dict]) -> dict[str, Any]:
    """Per-metric best class-mean over ``evaluations`` (each ``{step, epoch, mean}``), with where it occurred."""
    best: dict[str, float] = {}
    at: dict[str, int] = {}
    for e in evaluations:
        for k, v in e["mean"].items():
            if v is not None and (k not in best or v > best[k]):
                best[k], at[k] = v, e["epoch"]
    return {"note": BEST_NOTE, "mean": best, "at_epoch": at, "evaluations": evaluations}


def write_metrics(run_dir: Path, table: pd.DataFrame, extra: dict[str, Any]) -> None:
    """Write ``metrics.csv`` (the per-class table) and ``metrics.json`` (``extra`` + the final table)."""
    payload = {**extra, "final": {"mean": _mean_row(table),
                                  "per_class": {str(c): {k: _plain(v) for k, v in r.items()}
                                                for c, r in table.iterrows()}}}
    atomic_write(run_dir / METRICS_CSV, lambda tmp: table.to_csv(tmp, float_format="%.2f"))
    atomic_write(run_dir / METRICS_FILE, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2) + "\n"))


def final_evaluation(model, cfg: ExperimentConfig, run_dir: Path, evaluations: list[dict], step: int,
                     epoch: float, device, progress: bool, *, train_time_s: float) -> pd.DataFrame:
    """Evaluate the final model, write ``metrics.json``/``metrics.csv``, return the per-class table."""
    t0 = time.perf_counter()
    table = _evaluate(model, cfg, device, progress)
    eval_time = time.perf_counter() - t0
    final = {"step": step, "epoch": epoch, "mean": _mean_row(table)}
    write_metrics(run_dir, table, {
        "headline": "final", "protocol": "kit", "step": step, "train_time_s": round(train_time_s, 2),
        "eval_time_s": round(eval_time, 2),
        "best_over_training": best_over([*evaluations, final]) if evaluations else None})
    return table


def _config_from_args(args) -> ExperimentConfig:
    from . import presets

    cfg = ExperimentConfig.load(args.config) if getattr(args, "config", None) else presets.get(args.preset)
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "data_root", None):
        overrides.insert(0, f"data.root={json.dumps(str(args.data_root))}")
    return cfg.with_overrides(overrides) if overrides else cfg


def train_cli(args) -> None:
    """``omniad-lite train``: build the config (preset or config.json, --data-root, --set), train, print."""
    from .training import train

    cfg = _config_from_args(args)
    t0 = time.perf_counter()
    result = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
    if result["metrics"] is not None:
        print(result["metrics"].round(2).to_string())
        print(f"run: {result['run_dir']}  steps: {result['steps']}  train: {result['train_time_s']:.1f} s  "
              f"train+eval: {time.perf_counter() - t0:.1f} s")


def eval_cli(args) -> None:
    """``omniad-lite eval``: evaluate a finished run on its test split; write metrics.json and metrics.csv."""
    from .checkpoint import load_run
    from .utils import resolve_device

    run_dir = Path(args.run)
    device = resolve_device(args.device)
    cfg, model = load_run(run_dir, device=device)
    if args.data_root:
        cfg = cfg.with_overrides({"data.root": str(args.data_root)})
        if not Path(args.data_root).is_dir():
            raise FileNotFoundError(f"data root {args.data_root} does not exist")
    t0 = time.perf_counter()
    table = _evaluate(model, cfg, device, progress=True, protocol=args.protocol, batch_size=args.batch_size)
    previous = {}
    if (run_dir / METRICS_FILE).is_file():
        previous = json.loads((run_dir / METRICS_FILE).read_text())
    best = previous.get("best_over_training")
    if best is not None and previous.get("protocol") != args.protocol:
        best = None  # computed under another protocol: not comparable
    write_metrics(run_dir, table, {"headline": "final", "protocol": args.protocol,
                                   "step": previous.get("step"), "eval_time_s": round(time.perf_counter() - t0, 2),
                                   "train_time_s": previous.get("train_time_s"), "best_over_training": best})
    print(table.round(2).to_string())
    print(f"wrote {run_dir / METRICS_FILE} and {run_dir / METRICS_CSV}")


__all__ = ["train_cli", "eval_cli", "final_evaluation", "periodic_evaluation", "best_over", "write_metrics"]
