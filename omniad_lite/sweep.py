"""Ablation sweeps: variants × seeds, each a run directory, aggregated into one table with its seed spread.

``run_sweep(base_cfg, variants, seeds, out_dir)`` trains (or fits) every variant with every seed, each into
``out_dir/<variant>/seed<k>/`` (a normal run directory: ``omniad-lite eval``/``load_run`` work on it), and
returns one row per run. A variant is a list of overrides on ``base_cfg``: config keys
(``"model.ffn=resampled"``), among them ``"method=knn"`` plus ``"knn.<key>=<value>"`` settings for the
training-free kNN baseline (:mod:`omniad_lite.methods`). ``summarise`` turns the rows into one row per
variant: the mean over seeds, the spread (max − min over seeds) and the difference from a reference variant,
flagged as *beyond the seed spread* only when it exceeds the two variants' spreads added together (plus the
0.1 resolution of the stored metrics). Under Gaussian seed noise this flags a difference that is not there
about 1 time in 8 with two seeds per variant and 1 in 100 with three (``tests/test_sweep.py`` simulates it);
merely non-overlapping ranges would do so 1 time in 3 with two seeds. With fewer than two seeds nothing is
judged.

Finished runs whose saved config equals the one asked for are reused (a papermill re-run with more seeds
only trains the new ones); an interrupted Omni-AD run is resumed from its checkpoint (one interrupted before
its first checkpoint, or a kNN fit, is started again); a run directory holding a different config is an
error unless ``overwrite=True``. Ours (the released code has no sweep tooling).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .config import ExperimentConfig
from .errors import ConfigError
from .files import read_json
from .methods import method_settings, split_settings
from .methods import train as train_method
from .model import resolve_preprocess
from .run import RunDir

DEFAULT_METRICS = ("image_auroc", "pixel_auroc", "pixel_aupro", "mad")
SEED_KEY = "train.seed"
RESOLUTION = 0.1  # metrics.json stores percentages rounded to one decimal


def slug(name: str) -> str:
    """A folder name for a variant: ``"no global branch"`` → ``"no_global_branch"``."""
    out = "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()
    while "__" in out:
        out = out.replace("__", "_")
    return out or "variant"


@dataclass
class SweepRun:
    """One (variant, seed) of a sweep, fully resolved before anything runs."""

    variant: str
    seed: int
    cfg: ExperimentConfig
    settings: Any  # the method's own settings (a KnnConfig for method "knn"), else None
    run_dir: RunDir

    @property
    def method(self) -> str:
        return self.cfg.method


def plan_sweep(base_cfg: ExperimentConfig, variants: dict[str, list[str]], seeds: list[int],
               out_dir: str | Path) -> list[SweepRun]:
    """Check every variant's overrides and resolve every run (so a typo fails before hours of training).

    Raises:
        ValueError: an empty grid, a non-list variant, clashing folder names, or a bad override (one line
            naming the variant).
    """
    if not variants or not seeds:
        raise ConfigError(f"a sweep needs at least one variant and one seed (got {len(variants)} and {len(seeds)})")
    folders = [slug(v) for v in variants]
    clashes = sorted({f for f in folders if folders.count(f) > 1})
    if clashes:
        raise ConfigError(f"variant names {[v for v in variants if slug(v) in clashes]} share the folder name(s) "
                         f"{clashes}; rename them")
    runs = []
    for name, overrides in variants.items():
        if isinstance(overrides, str) or not isinstance(overrides, (list, tuple)):
            raise ConfigError(f"variant {name!r}: overrides must be a list of 'key=value' strings, got {overrides!r}")
        try:
            rest, settings = split_settings(list(overrides))
            for seed in seeds:
                cfg = resolve_preprocess(base_cfg.with_overrides([*rest, f"{SEED_KEY}={int(seed)}"]))
                runs.append(SweepRun(name, int(seed), cfg, method_settings(cfg, settings),
                                     RunDir(Path(out_dir) / slug(name) / f"seed{int(seed)}")))
        except ValueError as e:
            raise ConfigError(f"variant {name!r}: {e}") from None
    return runs


def _existing(run: SweepRun) -> str:
    """What to do with a run's folder.

    ``"new"`` (empty), ``"done"`` (same config, finished: reuse), ``"resume"`` (same config, an Omni-AD run with a
    checkpoint), ``"redo"`` (same config, interrupted before anything worth keeping: start it again) or
    ``"differs"`` (another config: only with ``overwrite``).
    """
    rd = run.run_dir
    if not rd.existing_files():
        return "new"
    try:
        same = not rd.load_config().diff(run.cfg)
        if run.method == "knn":
            same = same and (rd / RunDir.KNN).is_file() and read_json(rd / RunDir.KNN) == run.settings.to_dict()
    except (FileNotFoundError, ValueError):
        return "differs"
    if not same:
        return "differs"
    if rd.read_metrics() is not None:
        return "done"
    return "resume" if run.method == "omniad" and rd.checkpoint_steps() else "redo"


def _execute(run: SweepRun, state: str, progress: bool) -> None:
    """Train/fit one run (``state`` from :func:`_existing`; ``"differs"`` here means overwrite)."""
    train_method(run.cfg, run.run_dir, settings=run.settings, resume=state == "resume",
                 overwrite=run.method == "knn" or state in ("differs", "redo"), progress=progress)


def _row(run: SweepRun, reused: bool) -> dict[str, Any]:
    m = run.run_dir.read_metrics()
    return {"variant": run.variant, "seed": run.seed, "method": run.method, **m["final"]["mean"],
            "steps": m.get("step"), "train_time_s": m.get("train_time_s"), "reused": reused,
            "run_dir": str(run.run_dir)}


def run_sweep(base_cfg: ExperimentConfig, variants: dict[str, list[str]], seeds: list[int], out_dir: str | Path,
              *, overwrite: bool = False, progress: bool = False) -> pd.DataFrame:
    """Run every variant with every seed; one row per run.

    Args:
        base_cfg: the experiment every variant starts from (e.g. ``presets.get("demo")`` with data/epochs set).
        variants: ``{name: [override, ...]}`` in display order; the first is the usual reference.
        seeds: ``train.seed`` values (≥ 2 to measure the seed spread).
        out_dir: the sweep folder (``<out_dir>/<variant>/seed<k>/`` per run).
        overwrite: redo runs whose folder holds a different config (default: raise).
        progress: progress bars inside each run (a one-line summary per run is always printed).

    Returns:
        Columns ``variant, seed, method``, the class-mean metrics (percent), ``steps, train_time_s, reused,
        run_dir``.
    """
    runs = plan_sweep(base_cfg, variants, seeds, out_dir)
    states = {id(r): _existing(r) for r in runs}
    conflicts = [str(r.run_dir) for r in runs if states[id(r)] == "differs"]
    if conflicts and not overwrite:
        raise FileExistsError(f"{len(conflicts)} run folder(s) hold another config, e.g. "
                              f"{conflicts[0]}; choose another output_dir or pass overwrite=True")
    rows = []
    for i, run in enumerate(runs, 1):
        state, t0 = states[id(run)], time.perf_counter()
        if state != "done":
            _execute(run, state, progress)
        rows.append(_row(run, reused=state == "done"))
        note = "reused" if state == "done" else f"{time.perf_counter() - t0:.0f} s"
        print(f"[{i}/{len(runs)}] {run.variant}, seed {run.seed}: image AUROC {rows[-1]['image_auroc']:.1f}, "
              f"pixel AUROC {rows[-1]['pixel_auroc']:.1f} ({note})", flush=True)
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, metrics: tuple[str, ...] | list[str] = DEFAULT_METRICS,
              reference: str | None = None) -> pd.DataFrame:
    """One row per variant (in first-seen order): mean, spread and difference from ``reference`` per metric.

    Args:
        runs: :func:`run_sweep`'s rows (``variant``, ``seed`` and the metric columns).
        metrics: metric columns to summarise.
        reference: the variant differences are taken from (default: the first).

    Returns:
        Columns ``seeds`` and, per metric ``m``: ``m`` (mean over seeds), ``m_min``, ``m_max``, ``m_spread``
        (max − min), ``m_delta`` (mean − reference mean) and ``m_beyond_spread``: ``|delta| > spread +
        reference spread + RESOLUTION`` (``None`` for the reference or when either variant has fewer than two
        seeds).
    """
    order = list(dict.fromkeys(runs["variant"]))
    reference = order[0] if reference is None else reference
    if reference not in order:
        raise ConfigError(f"reference variant {reference!r} is not in the sweep: {order}")
    groups = runs.groupby("variant", sort=False)
    out = pd.DataFrame(index=pd.Index(order, name="variant"))
    out["seeds"] = groups["seed"].nunique()
    for m in metrics:
        out[m], out[f"{m}_min"], out[f"{m}_max"] = groups[m].mean(), groups[m].min(), groups[m].max()
        out[f"{m}_spread"] = out[f"{m}_max"] - out[f"{m}_min"]
        out[f"{m}_delta"] = out[m] - out.loc[reference, m]
        judged = (out["seeds"] >= 2) & (out.loc[reference, "seeds"] >= 2) & (out.index != reference)
        noise = out[f"{m}_spread"] + out.loc[reference, f"{m}_spread"] + RESOLUTION
        beyond = out[f"{m}_delta"].abs() > noise
        out[f"{m}_beyond_spread"] = pd.Series([bool(b) if j else None for b, j in zip(beyond, judged)],
                                              index=out.index, dtype=object)
    out.attrs["reference"] = reference
    return out


def display_table(summary: pd.DataFrame, metrics: tuple[str, ...] | list[str] = DEFAULT_METRICS) -> pd.DataFrame:
    """The summary as text: ``mean [min–max]`` per metric and ``Δ`` marked ``beyond``/``within`` the seed spread."""
    reference = summary.attrs.get("reference")
    table = pd.DataFrame(index=summary.index)
    table["seeds"] = summary["seeds"]
    for m in metrics:
        table[m] = [f"{r[m]:.1f} [{r[f'{m}_min']:.1f}–{r[f'{m}_max']:.1f}]" for _, r in summary.iterrows()]
        marks = []
        for name, r in summary.iterrows():
            flag = r[f"{m}_beyond_spread"]
            verdict = ("reference" if name == reference else "? (1 seed)" if flag is None
                       else "beyond spread" if flag else "within spread")
            marks.append(verdict if name == reference else f"{r[f'{m}_delta']:+.1f} {verdict}")
        table[f"Δ {m}"] = marks
    return table
