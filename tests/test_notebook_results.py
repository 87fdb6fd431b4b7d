"""results.json in one schema and ``collect``: many results files → one table (one row per file and class),
checked against values written by hand; the notebooks' own results.json are collected in test_notebooks.py."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from omniad_lite import ExperimentConfig, collect, presets
from omniad_lite.errors import InputError
from omniad_lite.notebook_params import notebook_parameters
from omniad_lite.notebook_results import SCHEMA_VERSION, read_results, write_results


def _table(auroc: dict[str, float]) -> pd.DataFrame:
    rows = {c: {"image_auroc": v, "pixel_auroc": None} for c, v in auroc.items()}
    rows["mean"] = {"image_auroc": sum(auroc.values()) / len(auroc), "pixel_auroc": None}
    return pd.DataFrame.from_dict(rows, orient="index")


def test_write_then_collect_gives_one_row_per_run_and_class(tmp_path):
    cfg = presets.get("demo")
    for i, epochs in enumerate((2, 5)):
        write_results(tmp_path / f"sweep/run{i}", "00_quickstart", {"preset": "demo", "epochs": epochs},
                      config=cfg.with_overrides({"train.epochs": epochs}), run_dir=tmp_path / f"run{i}",
                      metrics=_table({"brick": 80.0 + i, "coffee": 90.0}), times={"train_time_s": 12.345})
    write_results(tmp_path / "sweep/features", "01_data_and_features", {"preset": "demo"}, extra={"shape": (1, 2)})
    record = read_results(tmp_path / "sweep/run0/results.json")
    assert record["schema"] == SCHEMA_VERSION and record["metrics"]["mean"]["image_auroc"] == 85.0
    assert record["metrics"]["per_class"]["coffee"] == {"image_auroc": 90.0, "pixel_auroc": None}
    assert record["times"] == {"train_time_s": 12.35} and record["versions"]["torch"]

    table = collect(str(tmp_path / "sweep/**/results.json"))
    assert len(table) == 2 * 3 + 1  # two runs × (2 classes + mean), one file without metrics
    run1 = table[table["param.epochs"] == 5].set_index("class")
    assert run1.loc["brick", "image_auroc"] == 81.0 and run1.loc["mean", "image_auroc"] == 85.5
    assert (run1["train.epochs"] == 5).all() and (run1["method"] == "omniad").all()
    assert (run1["run_dir"] == str(tmp_path / "run1")).all() and (run1["train_time_s"] == 12.35).all()
    features = table[table["notebook"] == "01_data_and_features"]
    assert len(features) == 1 and features["class"].isna().all()
    assert len(collect(tmp_path / "sweep")) == len(table)  # a folder is searched recursively


def test_collect_refuses_files_of_another_shape_and_empty_patterns(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"notebook": "x", "mean": {}}))
    with pytest.raises(InputError, match=r"results.json is not a results.json of schema 1"):
        collect(tmp_path)
    with pytest.raises(InputError, match="no results.json matches"):
        collect(str(tmp_path / "nothing/**/results.json"))


def test_notebook_parameters_reads_the_parameters_cell_with_papermills_values():
    history = ["", "!pip install x", "preset = 'demo'\nepochs = None  # the preset's\n", "# Parameters\nepochs = 3\n",
               "cfg = make(preset)"]
    namespace = {"preset": "demo", "epochs": 3, "cfg": ExperimentConfig()}
    assert notebook_parameters(history, namespace) == {"preset": "demo", "epochs": 3}
