"""Execute every tutorial notebook with papermill (small parameters) and check the results JSON it writes.

The notebooks' *default* runs are covered by ``pytest --nbval-lax notebooks/`` (cells marked
``# NBVAL_CHECK_OUTPUT`` compare their output with the committed one); this file checks the papermill
interface: parameters reach the library, bad parameters fail in the first cells, and each notebook's
``results.json`` holds what its text promises. Numbers are checked against independent expectations
(the released code's sizes, the demo dataset's known counts, protocol invariants).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from omniad_lite import collect
from omniad_lite.notebook_results import read_results

pm = pytest.importorskip("papermill")

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DEMO_CLASSES = ["brick", "coffee", "coins", "grass", "gravel"]
METRICS = {"image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap", "pixel_f1max", "pixel_aupro", "mad"}
TINY = dict(iterations=3)


def run(name: str, tmp: Path, **params) -> dict:
    """Execute ``notebooks/<name>.ipynb`` into ``tmp`` (also its working dir); return its results.json, checked
    against the schema, as one flat dict: its ``extra``, the metrics' ``mean``/``per_class`` and the rest."""
    out = tmp / name
    pm.execute_notebook(NOTEBOOKS / f"{name}.ipynb", tmp / f"{name}.ipynb", cwd=str(tmp), progress_bar=False,
                        parameters={"output_dir": str(out), **params})
    record = read_results(out / "results.json")
    assert record["notebook"] == name and {k: record["parameters"][k] for k in params} == params
    metrics = record["metrics"] or {}
    return {**record["extra"], **{k: v for k, v in record.items() if k != "extra"},
            "mean": metrics.get("mean"), "per_class": metrics.get("per_class")}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notebooks")


@pytest.fixture(scope="module")
def quickstart(tmp) -> dict:
    return run("00_quickstart", tmp, **TINY)


@pytest.fixture(scope="module")
def training(tmp) -> dict:
    return run("03_training", tmp, classes=["brick", "coffee"], epochs=None, **TINY)


def test_00_quickstart(quickstart, tmp):
    assert quickstart["steps"] == TINY["iterations"]
    assert sorted(quickstart["per_class"]) == DEMO_CLASSES
    assert set(quickstart["mean"]) == METRICS
    for m in METRICS:  # the mean row is the mean over classes
        expected = sum(quickstart["per_class"][c][m] for c in DEMO_CLASSES) / len(DEMO_CLASSES)
        assert abs(quickstart["mean"][m] - expected) <= 0.1 + 1e-9  # mean of unrounded values, both rounded to 0.1
    assert Path(quickstart["heatmaps"]).stat().st_size > 10_000
    run_dir = Path(quickstart["run_dir"])
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "history.csv").is_file()


def test_01_data_and_features(quickstart, tmp):
    res = run("01_data_and_features", tmp, num_examples=3, run_dir=quickstart["run_dir"])
    assert res["teacher"] == "tf_efficientnet_lite0"
    assert res["channels"] == [24, 40, 112] and res["strides"] == [4, 8, 16]
    assert res["feature_shapes"] == [[24, 32, 32], [40, 16, 16], [112, 8, 8]]  # 128² demo input
    assert res["counts"] == {"train": 5 * 36, "test": 5 * 25}  # demo: 36 train, 10 + 15 test per class
    assert len(res["crude_scores"]) == 3
    assert res["trained_run"] == quickstart["run_dir"]
    assert res["hand_vs_library_max_abs_diff"] < 1e-5  # the hand-made map is the library's
    assert "/coffee/test/good/" in res["example"]["normal"] and "/coffee/test/good/" not in res["example"]["anomalous"]


def test_02_omni_block(quickstart, tmp):
    res = run("02_omni_block", tmp, run_dir=quickstart["run_dir"], dim=32, side=8)
    sizes = res["paper_sizes"]  # docs/method.md: measured on the released code
    assert sizes["encoder (frozen)"] == 8_170_304 and sizes["neck"] == 1_458_304
    assert sizes["decoder, resampled FFN (released)"] == 20_298_304
    assert sizes["decoder, learned FFN (our default)"] == 20_298_304 + 6_231_296
    assert res["ffn_two_pass_max_abs_diff"]["learned, trained-like tokens"] == 0.0
    assert res["ffn_two_pass_max_abs_diff"]["resampled, trained-like tokens"] > 0.0
    assert res["trained_run"] == quickstart["run_dir"]
    b, heads, tokens, h, w = res["attention_shape"]
    assert (b, heads, tokens) == (1, 8, 16)  # demo preset: 16 learnable query tokens


def test_03_training(training):
    assert training["steps"] == TINY["iterations"]
    assert training["config"]["data"]["classes"] == ["brick", "coffee"]
    assert set(training["mean"]) == METRICS
    run_dir = Path(training["run_dir"])
    for f in ("config.json", "history.csv", "model.safetensors", "metrics.json", "metrics.csv"):
        assert (run_dir / f).is_file(), f


def test_04_evaluation_two_protocols(training, tmp):
    res = run("04_evaluation", tmp, run_dir=training["run_dir"], num_resamples=50)
    assert sorted(res["per_class"]) == ["brick", "coffee"] and res["num_images"] == 50
    assert res["metrics"]["protocol"] == "kit" and res["released"]["protocol"] == "released"
    for c in ("brick", "coffee"):
        kit, rel = res["kit_from_stored_maps"]["per_class"][c], res["released"]["per_class"][c]
        for m in ("image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap"):
            assert kit[m] == rel[m], (c, m)  # protocols differ only in pixel F1-max and AU-PRO
        low, high = res["image_auroc_ci"][c]
        assert low <= high and 0 <= low and high <= 100
    # 04's table is 03's final evaluation (same model, same data, float32 maps); the stored float16 maps
    # move the pixel metrics by at most a few tenths
    assert res["mean"] == pytest.approx(training["mean"], abs=1e-9)
    assert res["kit_from_stored_maps"]["mean"] == pytest.approx(training["mean"], abs=0.3)
    assert 0 < res["defect_pixel_fraction"] < 0.1


def test_05_ablations(tmp):
    variants = {"base": [], "resampled": ["model.ffn=resampled"], "kNN": ["method=knn"]}
    res = run("05_ablations", tmp, iterations=2, classes=["brick"], variants=variants, seeds=[0, 1])
    assert [(r["variant"], r["seed"], r["steps"]) for r in res["runs"]] == [
        ("base", 0, 2), ("base", 1, 2), ("resampled", 0, 2), ("resampled", 1, 2), ("kNN", 0, 0), ("kNN", 1, 0)]
    run_dirs = {(r["variant"], r["seed"]): Path(r["run_dir"]) for r in res["runs"]}
    assert json.loads((run_dirs[("resampled", 1)] / "config.json").read_text())["model"]["ffn"] == "resampled"
    assert (run_dirs[("kNN", 0)] / "knn.json").is_file()  # the baseline's run directory
    assert list(res["summary"]) == list(variants) and res["reference"] == "base"
    for v in variants:  # the table's mean is the mean of the runs' class means
        seeds = [r["image_auroc"] for r in res["runs"] if r["variant"] == v]
        assert res["summary"][v]["image_auroc"] == pytest.approx(sum(seeds) / 2)
        assert res["summary"][v]["image_auroc_spread"] == pytest.approx(max(seeds) - min(seeds))
    assert res["summary"]["base"]["mad_beyond_spread"] is None  # the reference is not judged
    assert res["summary"]["kNN"]["mad_beyond_spread"] in (True, False)  # two seeds each: judged
    assert Path(res["plot"]).stat().st_size > 10_000


def test_collect_reads_the_executed_notebooks_into_one_table(quickstart, training, tmp):
    """00 (all classes) and 03 (two classes), run above with different parameters: one row per run and class."""
    table = collect(str(tmp / "**" / "results.json"))
    ran = table[table["notebook"].isin(["00_quickstart", "03_training"])]
    rows = ran.groupby("notebook")["class"].apply(sorted).to_dict()
    assert rows == {"00_quickstart": sorted([*DEMO_CLASSES, "mean"]), "03_training": ["brick", "coffee", "mean"]}
    assert set(METRICS) <= set(table.columns) and {"param.iterations", "train.seed", "model.encoder"} <= set(table)
    q = ran[(ran["notebook"] == "00_quickstart") & (ran["class"] == "mean")].iloc[0]
    assert q["image_auroc"] == quickstart["mean"]["image_auroc"] and q["run_dir"] == quickstart["run_dir"]
    t = ran[ran["notebook"] == "03_training"]
    assert (t["data.classes"] == ("brick", "coffee")).all() and (t["param.iterations"] == TINY["iterations"]).all()
    assert set(table["version.torch"]) == {torch.__version__}


def test_05_bad_variant_fails_in_first_cells(tmp):
    with pytest.raises(pm.PapermillExecutionError) as err:
        run("05_ablations", tmp, variants={"base": [], "typo": ["model.ffn=fast"]}, seeds=[0, 1])
    assert "variant 'typo'" in str(err.value) and "ModelConfig.ffn='fast'" in str(err.value)
    assert err.value.exec_count <= 5  # Colab cell, parameters, injected parameters, runtime cell, then the check


def test_06_your_own_images(tmp):
    res = run("06_your_own_images", tmp, iterations=3, gallery_size=4, fpr=0.1)
    assert res["format"] == "folder"  # the flat good/bad folder built from the demo data, recognised as such
    # demo class "coffee": 36 train + 10 test good images, 15 defective ones (demo data v3), no masks
    assert res["counts"] == {"train": 37, "test normal": 9, "test anomalous": 15, "masks": 0}
    assert res["mean"]["pixel_auroc"] is None  # no masks: undefined, not 0
    assert 0.0 <= res["mean"]["image_auroc"] <= 100.0
    assert res["method"] == "fpr" and res["fpr"] == 0.1 and res["n_heldout"] == round(0.2 * 37)
    assert res["heldout_false_positives"] <= int(0.1 * res["n_heldout"])
    assert sum(res["decisions"].values()) == 24
    assert res["onnx_same_decisions"] is True and res["onnx_max_map_diff"] < 1e-4
    assert Path(res["onnx"]).stat().st_size > 1_000_000


def test_06_bad_parameters_fail_in_first_cells(tmp):
    with pytest.raises(pm.PapermillExecutionError) as err:
        run("06_your_own_images", tmp, fpr=0.7)
    assert "must be a false-positive rate in (0, 0.5)" in str(err.value)
    assert err.value.exec_count <= 5


@pytest.mark.parametrize("params, message", [
    ({"epochs": "two"}, "train.epochs='two' has type str"),
    ({"preset": "paper-mvtek"}, "unknown preset 'paper-mvtek'"),
    ({"overrides": ["model.ffn=fast"]}, "ModelConfig.ffn='fast'"),
])
def test_03_bad_parameters_fail_in_first_cells(tmp, params, message):
    with pytest.raises(pm.PapermillExecutionError) as err:
        run("03_training", tmp, **params)
    assert message in str(err.value)
    # Colab install cell, parameters, injected parameters, runtime cell, then the check fails
    assert err.value.exec_count <= 5
