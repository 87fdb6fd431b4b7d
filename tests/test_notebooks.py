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

pm = pytest.importorskip("papermill")

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DEMO_CLASSES = ["brick", "coffee", "coins", "grass", "gravel"]
METRICS = {"image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap", "pixel_f1max", "pixel_aupro", "mad"}
TINY = dict(iterations=3)


def run(name: str, tmp: Path, **params) -> dict:
    """Execute ``notebooks/<name>.ipynb`` into ``tmp`` (also its working dir); return its results.json."""
    out = tmp / name
    pm.execute_notebook(NOTEBOOKS / f"{name}.ipynb", tmp / f"{name}.ipynb", cwd=str(tmp), progress_bar=False,
                        parameters={"output_dir": str(out), **params})
    return json.loads((out / "results.json").read_text())


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


def test_01_data_and_features(tmp):
    res = run("01_data_and_features", tmp, num_examples=3)
    assert res["teacher"] == "tf_efficientnet_lite0"
    assert res["channels"] == [24, 40, 112] and res["strides"] == [4, 8, 16]
    assert res["feature_shapes"] == [[24, 32, 32], [40, 16, 16], [112, 8, 8]]  # 128² demo input
    assert res["counts"] == {"train": 5 * 36, "test": 5 * 25}  # demo: 36 train, 10 + 15 test per class
    assert len(res["crude_scores"]) == 3


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
    res = run("04_evaluation", tmp, run_dir=training["run_dir"], num_cases=2)
    assert sorted(res["kit"]["per_class"]) == ["brick", "coffee"] and res["num_images"] == 50
    for c in ("brick", "coffee"):
        kit, rel = res["kit"]["per_class"][c], res["released"]["per_class"][c]
        for m in ("image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap"):
            assert kit[m] == rel[m], (c, m)  # protocols differ only in pixel F1-max and AU-PRO
    # 04 evaluates the same model on the same data as 03's final evaluation (04: from float16 maps)
    assert res["kit"]["mean"] == pytest.approx(training["mean"], abs=1.0)


def test_05_ablations(tmp):
    variants = {"base": [], "resampled": ["model.ffn=resampled"]}
    res = run("05_ablations", tmp, iterations=2, classes=["brick"], variants=variants,
              notebook=str(NOTEBOOKS / "03_training.ipynb"))
    assert list(res["table"]) == ["base", "resampled"]
    assert [res["table"][v]["ffn"] for v in variants] == ["learned", "resampled"]
    assert all(res["table"][v]["steps"] == 2 for v in variants)
    assert (tmp / "05_ablations" / "resampled" / "03_training.ipynb").is_file()


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
