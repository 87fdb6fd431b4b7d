"""The benchmark scripts run (CPU smoke versions) and time the training engine's own pieces."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_recipe_smoke_writes_its_table(tmp_path):
    bench = load("gpu_recipe")
    out = tmp_path / "table.md"
    lines = bench.main(["--smoke", "--device", "cpu", "--precisions", "fp32,bf16,fp16", "--out", str(out),
                        "--realiad-train-images", "1000"])
    assert out.read_text().splitlines() == lines
    rows = [line for line in lines if line.startswith("| fp") or line.startswith("| bf")]
    # CPU: fp16 is CUDA-only and compile is skipped → fp32/bf16 × teacher cache off/memory
    assert [tuple(c.strip() for c in r.split("|")[1:4]) for r in rows] == [
        ("fp32", "off", "off"), ("fp32", "off", "memory"), ("bf16", "off", "off"), ("bf16", "off", "memory")]
    for r in rows:
        cells = [c.strip() for c in r.split("|")[1:-1]]
        ips = float(cells[3])
        assert ips > 0 and cells[4] == "n/a (CPU)"
        # projected wall time = images × epochs / images per second (MVTec-AD, VisA, Real-IAD); the printed
        # images/s is rounded to 0.01, hence the tolerance
        for cell, images, epochs in zip(cells[6:], (3629, 8659, 1000), (1000, 1000, 100)):
            value, unit = cell.split()
            hours = images * epochs / ips / 3600
            expected = hours if unit == "h" else hours * 60
            assert float(value) == pytest.approx(expected, rel=0.006 / ips + 0.001, abs=0.06)
    assert "command: python benchmarks/gpu_recipe.py --smoke" in lines[1]


def test_gpu_recipe_real_iad_unknown_without_a_count():
    bench = load("gpu_recipe")
    recipes = [(n, k, e) for n, k, e in bench.RECIPES]
    line = bench.table([dict(precision="fp32", compile=False, cache=False)],
                       [dict(images_per_s=36.29, peak_mib=1024.0, warmup_s=1.0)], recipes)[2]
    assert line.split("|")[-2].strip() == "not known"
    assert "27.8 h" in line  # MVTec-AD: 3,629 × 1000 / 36.29 images/s = 100,000 s
    assert "1,024 MiB" in line


def test_design_matters_groups_by_defect_type_and_merges_parallel_parts(tmp_path):
    import json

    import pandas as pd

    bench = load("bench_design_matters")
    rows = [  # two variants measured by separate processes; lattice rows stay per defect, others pool classes
        {"variant": "A", "seed": 0, "class": "brick", "defect": "scratch", "image_auroc": 80.0, "contrast": 2.0},
        {"variant": "A", "seed": 0, "class": "coins", "defect": "scratch", "image_auroc": 90.0, "contrast": 4.0},
        {"variant": "A", "seed": 0, "class": "lattice", "defect": "missing", "image_auroc": 12.0, "contrast": 1.0},
        {"variant": "B", "seed": 0, "class": "lattice", "defect": "missing", "image_auroc": 70.0, "contrast": 1.5},
    ]
    full = pd.DataFrame(rows).assign(pixel_auroc=50.0, err_defect=0.2, err_normal=0.1, err_ratio=2.0)
    for v in ("A", "B"):
        bench.write(tmp_path, f"part_{v}", full[full["variant"] == v], {
            "command": f"cmd {v}", "machine": "m", "load_average_start": [1.0, 1.0, 1.0], "steps": {v: 3},
            "time_s": {v: 1}, "total_time_s": 1})
    table = bench.merge([tmp_path / "part_A.json", tmp_path / "part_B.json"], tmp_path, "all")
    assert table.loc[("scratch", "A"), "image_auroc"] == 85.0 and table.loc[("scratch", "A"), "classes"] == 2
    assert table.loc[("lattice: missing", "B"), "contrast"] == 1.5
    meta = json.loads((tmp_path / "all.json").read_text())
    assert meta["steps"] == {"A": 3, "B": 3} and meta["class_image_auroc"] == {}  # no class-level rows given
    assert len(pd.read_csv(tmp_path / "all.csv")) == 4
