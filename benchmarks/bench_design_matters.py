"""Where does Omni-AD's design matter? Results by defect type, and on layout defects that need global context.

Trains the ``demo`` preset (its full schedule) on the demo data plus the opt-in ``lattice`` class (a 4 × 4
grid of studs whose defects are a missing, an extra or a shifted stud: ``omniad_lite/data/demo_lattice.py``)
in four variants — Omni-AD, its global branch alone, its local branch alone, no feature jitter — and fits the
kNN baseline twice (stride-8 patches, the setting that matches Omni-AD on the demo, and PatchCore's recipe;
``omniad_lite/baselines``).
Every run is an ordinary run directory (``omniad_lite.sweep.run_sweep``; finished runs are reused).

For every (variant, seed, class, defect type) it measures on the test split:

- image AUROC: that defect type's images against the class's normal test images (score = the map's max),
  and every defect type together (``all defects``: the class's usual image AUROC);
- pixel AUROC over the pixels of those images;
- the map's mean on defect pixels and on the pixels of normal images, and their ratio (*contrast*): a
  decoder that has learnt the "identical shortcut" reconstructs a defect as well as normal ground, and its
  contrast falls towards 1;
- for the Omni-AD variants also the raw reconstruction error, the mean over the three scales of
  ``1 − cos(teacher, reconstruction)`` upsampled without the blur, on defect and on normal pixels.

Writes ``design_matters.csv`` (one row per variant, seed, class and defect type) and ``design_matters.json``
(the table by defect type, the command, machine, load average and times) to ``--out``.

    nice -n 10 python benchmarks/bench_design_matters.py --seeds 0 1     # ~5 runs per seed, minutes each on CPU
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from omniad_lite import presets
from omniad_lite.data import make_demo_dataset
from omniad_lite.data.demo import STAMP_FILE
from omniad_lite.evaluation.evaluator import test_dataset
from omniad_lite.evaluation.run_loading import load_run
from omniad_lite.model.anomaly_map import anomaly_map, image_scores
from omniad_lite.sweep import run_sweep

VARIANTS = {
    "Omni-AD": [],
    "global only": ["model.use_local_branch=false"],
    "local only": ["model.use_global_branch=false"],
    "no jitter": ["model.jitter_scale=0"],
    "kNN stride 8": ["method=knn", "knn.scales=[1]", "knn.patch_size=1", "knn.coreset_ratio=0.1"],
    "kNN PatchCore": ["method=knn"],  # PatchCore's recipe: strides 8 + 16, 3 × 3 neighbourhoods, 1 % coreset
}
ALL = "all defects"  # the class-level row: every defect type against the normal images (the usual AUROC)
DEFAULT_OUT = Path(__file__).parent / "results"
DEFAULT_WORK = Path.home() / ".cache" / "omniad_lite" / "bench_design_matters"


def demo_with_lattice(work: Path) -> Path:
    """The demo data plus ``lattice`` under ``work/data`` (written once)."""
    root = work / "data"
    stamp = root / STAMP_FILE
    if not (stamp.is_file() and "lattice" in json.loads(stamp.read_text())["classes"]):
        make_demo_dataset(root, seed=0, verbose=False, extra_classes=("lattice",))
    return root


@torch.no_grad()
def score_run(run_dir: Path) -> list[dict]:
    """Maps of one run on its test split → one row per (class, defect type)."""
    run = load_run(run_dir)
    model, cfg = run.model, run.config
    data = test_dataset(cfg, model.preprocess, progress=False)
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    maps, raws, masks, scores, classes, defects = [], [], [], [], [], []
    for batch in loader:
        images = batch["image"]  # (B, 3, S, S)
        if hasattr(model, "score_images"):  # the kNN baseline
            m, s = model.score_images(images)  # (B, S, S), (B,)
            raw = torch.full_like(m, float("nan"))
        else:
            feats, recs = model(images)
            m = anomaly_map(feats, recs, tuple(images.shape[-2:]))  # (B, S, S), blurred
            s = image_scores(m)
            raw = anomaly_map(feats, recs, tuple(images.shape[-2:]), sigma=0)  # (B, S, S), no blur
        maps.append(m.numpy())
        raws.append(raw.numpy())
        masks.append(batch["mask"][:, 0].numpy() > 0.5)  # (B, S, S)
        scores.append(s.numpy())
        classes += list(batch["cls_name"])
        defects += [Path(p).parent.name for p in batch["path"]]
    maps, raws, masks, scores = map(np.concatenate, (maps, raws, masks, scores))
    classes, defects = np.array(classes), np.array(defects)
    rows = []
    for cls in sorted(set(classes)):
        normal = (classes == cls) & (defects == "good")
        types = sorted(set(defects[(classes == cls) & (defects != "good")]))
        for defect in [*types, ALL]:
            bad = (classes == cls) & ((defects != "good") if defect == ALL else (defects == defect))
            keep = normal | bad
            labels = np.r_[np.zeros(normal.sum()), np.ones(bad.sum())]
            pix = masks[keep].ravel()
            rows.append({
                "class": cls, "defect": defect, "images": int(bad.sum()),
                "image_auroc": 100 * roc_auc_score(labels, np.r_[scores[normal], scores[bad]]),
                "pixel_auroc": 100 * roc_auc_score(pix, maps[keep].ravel()),
                "map_defect": float(maps[bad][masks[bad]].mean()), "map_normal": float(maps[normal].mean()),
                "err_defect": float(raws[bad][masks[bad]].mean()), "err_normal": float(raws[normal].mean()),
            })
    for r in rows:
        r["contrast"] = r["map_defect"] / r["map_normal"]
        r["err_ratio"] = r["err_defect"] / r["err_normal"] if np.isfinite(r["err_normal"]) else float("nan")
    return rows


def group(row: pd.Series) -> str:
    """The table's row label: the lattice's defects on their own, the other types pooled over classes."""
    return f"lattice: {row['defect']}" if row["class"] == "lattice" else row["defect"]


def by_defect(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over classes and seeds per (defect group, variant)."""
    df = df.assign(group=df.apply(group, axis=1))
    cols = ["image_auroc", "pixel_auroc", "contrast", "err_defect", "err_normal", "err_ratio"]
    out = df.groupby(["group", "variant"], sort=False)[cols].mean()
    out["classes"] = df.groupby(["group", "variant"], sort=False)["class"].nunique()
    return out


def write(out: Path, name: str, df: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """Write ``<name>.csv`` (every row) and ``<name>.json`` (the table by defect type and how it was made)."""
    table = by_defect(df)
    out.mkdir(parents=True, exist_ok=True)
    df.round(4).to_csv(out / f"{name}.csv", index=False)
    classes = df[df["defect"] == ALL].groupby(["variant", "class"], sort=False)["image_auroc"].mean().round(2)
    meta = {**meta, "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "class_image_auroc": {v: classes[v].to_dict() for v in classes.index.unique(0)},
            "table": [{"group": g, "variant": v, **{k: round(float(x), 4) for k, x in r.items()}}
                      for (g, v), r in table.iterrows()]}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return table


def merge(parts: list[Path], out: Path, name: str) -> pd.DataFrame:
    """One table from results written by separate invocations (each ``<name>.json`` next to its CSV)."""
    metas = [json.loads(p.read_text()) for p in parts]
    df = pd.concat([pd.read_csv(p.with_suffix(".csv")) for p in parts], ignore_index=True)
    meta = {"command": " && ".join(m["command"] for m in metas) + "  # run in parallel, then --merge",
            "machine": metas[0]["machine"], "load_average_start": max((m["load_average_start"] for m in metas)),
            "steps": {k: v for m in metas for k, v in m["steps"].items()},
            "time_s": {k: v for m in metas for k, v in m["time_s"].items()},
            "total_time_s": max(m["total_time_s"] for m in metas)}
    table = write(out, name, df, meta)
    print(table.round(3))
    return table


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="a subset of " + ", ".join(VARIANTS))
    parser.add_argument("--classes", nargs="+", default=None, help="default: the five demo classes and lattice")
    parser.add_argument("--iterations", type=int, default=None, help="optimiser steps (default: the preset's epochs)")
    parser.add_argument("--batch", type=int, default=None, help="images per optimiser step (default: the preset's 16)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="data and run directories")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the CSV and JSON are written")
    parser.add_argument("--name", default="design_matters", help="file name of the CSV and JSON")
    parser.add_argument("--merge", nargs="+", type=Path, default=None,
                        help="combine these result JSONs (variants measured by separate processes) into --name")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out, args.name)
    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        raise SystemExit(f"unknown variant(s) {bad}; choose from {list(VARIANTS)}")
    t0 = time.time()
    given = sys.argv[1:] if argv is None else argv
    meta = {"command": "python benchmarks/bench_design_matters.py " + shlex.join(given),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {platform.system()}",
            "load_average_start": [round(x, 2) for x in os.getloadavg()], "steps": {}, "time_s": {}}
    root = demo_with_lattice(args.work)
    base = presets.get("demo").with_overrides({"data.root": str(root), "data.format": "mvtec",
                                               "data.classes": args.classes, "data.cache_dir": str(args.work / "cache"),
                                               "train.iterations": args.iterations,
                                               "train.batch_size": args.batch or presets.get("demo").train.batch_size})
    rows = []
    for variant in args.variants:  # one variant at a time: the files hold every finished one
        t1 = time.time()
        runs = run_sweep(base, {variant: VARIANTS[variant]}, args.seeds, args.work / "runs")
        for _, run in runs.iterrows():
            rows += [{"variant": variant, "seed": run["seed"], **r} for r in score_run(Path(run["run_dir"]))]
            meta["steps"][f"{variant} seed {run['seed']}"] = int(run["steps"])
        meta["time_s"][variant] = round(time.time() - t1)
        table = write(args.out, args.name, pd.DataFrame(rows), {**meta, "total_time_s": round(time.time() - t0)})
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        print(table.round(3))
    print(f"wrote {args.out / args.name}.csv and .json ({round(time.time() - t0)} s)")
    return table


if __name__ == "__main__":
    main()
