"""What each tutorial notebook promises in its ``results.json``, and bad parameters failing in the first cells.

The results come from the session's one execution of each notebook with its defaults
(``tests/notebook_session.py``: the wheel in the simulated Colab; 03 on 100 steps, 05 on 2 steps per run;
01, 02 and 04 given 00's run). Expectations are
derived from the notebook's default parameters and checked against independent figures (the released code's
sizes, the demo dataset's known counts, protocol invariants), so they follow a change of the defaults.
The bad-parameter tests run papermill on the checkout's kit, two at a time; they stop in the first cells.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from notebook_session import RUN_SOURCES, default_parameters, run_failing

from omniad_lite import collect, presets
from omniad_lite.notebook_results import read_results

pytest.importorskip("papermill")

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DEMO_CLASSES = ["brick", "coffee", "coins", "grass", "gravel"]
DEMO_TRAIN, DEMO_TEST = 36, 10 + 15  # images per demo class (demo data v3): train; test good + defective
METRICS = {"image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap", "pixel_f1max", "pixel_aupro", "mad"}


class Executed:
    """A notebook of the session: its results, the parameters it ran with and the paths it wrote."""

    def __init__(self, session, name: str):
        self.run = session[name]
        self.run.check()
        self.file = self.run.folder / default_parameters(self.run.notebook).get("output_dir", ".") / "results.json"
        self.record = read_results(self.file)  # checked against the one results.json schema
        self.results = flatten(self.record)
        self.params = {**default_parameters(session.source(name)), **self.run.parameters}

    def path(self, value: str) -> Path:
        return self.run.path(value)

    def classes(self) -> list[str]:
        return sorted(self.params.get("classes") or DEMO_CLASSES)


def flatten(record: dict) -> dict:
    """A results.json record as one flat dict: its ``extra``, the metrics' ``mean``/``per_class`` and the rest."""
    metrics = record["metrics"] or {}
    return {**record["extra"], **{k: v for k, v in record.items() if k != "extra"},
            "mean": metrics.get("mean"), "per_class": metrics.get("per_class")}


def trained_on(per_class: int, classes: int, val_fraction: float) -> int:
    """Normal images trained on: each class's minus its held-out share (``round(fraction·n)``, docs/own_images.md)."""
    return classes * (per_class - round(val_fraction * per_class))


def expected_steps(params: dict, train_images: int) -> int:
    """Optimiser steps of a run on ``train_images``: ``iterations``, else epochs (the preset's when None) × full
    batches per epoch."""
    if params.get("iterations") is not None:
        return params["iterations"]
    train = presets.get(params.get("preset", "demo")).train
    epochs = params.get("epochs") or train.epochs
    return epochs * (train_images // (params.get("batch_size") or train.batch_size))


def demo_trained_on(params: dict, classes: int) -> int:
    """Demo images a notebook's run trains on (its preset's held-out share left out)."""
    return trained_on(DEMO_TRAIN, classes, presets.get(params.get("preset", "demo")).data.val_fraction)


@pytest.fixture(scope="module")
def quickstart(notebook_session) -> Executed:
    return Executed(notebook_session, "00_quickstart")


@pytest.fixture(scope="module")
def training(notebook_session) -> Executed:
    return Executed(notebook_session, "03_training")


def test_00_quickstart(quickstart):
    res = quickstart.results
    assert res["steps"] == expected_steps(quickstart.params, demo_trained_on(quickstart.params, len(DEMO_CLASSES)))
    assert sorted(res["per_class"]) == DEMO_CLASSES
    assert set(res["mean"]) == METRICS
    for m in METRICS:  # the mean row is the mean over classes
        expected = sum(res["per_class"][c][m] for c in DEMO_CLASSES) / len(DEMO_CLASSES)
        assert abs(res["mean"][m] - expected) <= 0.1 + 1e-9  # mean of unrounded values, both rounded to 0.1
    assert quickstart.path(res["heatmaps"]).stat().st_size > 10_000
    run_dir = quickstart.path(res["run_dir"])
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "history.csv").is_file()


def test_01_data_and_features(notebook_session, quickstart):
    nb = Executed(notebook_session, "01_data_and_features")
    res = nb.results
    assert res["teacher"] == "tf_efficientnet_lite0"
    assert res["channels"] == [24, 40, 112] and res["strides"] == [4, 8, 16]
    assert res["feature_shapes"] == [[24, 32, 32], [40, 16, 16], [112, 8, 8]]  # 128² demo input
    assert res["counts"] == {"train": 5 * DEMO_TRAIN, "test": 5 * DEMO_TEST}
    assert len(res["crude_scores"]) == nb.params["num_examples"]
    assert nb.path(res["trained_run"]) == quickstart.path(quickstart.results["run_dir"])  # 00's run, not a new one
    assert res["hand_vs_library_max_abs_diff"] < 1e-5  # the hand-made map is the library's
    good = f"/{nb.params['example_class']}/test/good/"
    assert good in res["example"]["normal"] and good not in res["example"]["anomalous"]


def test_02_omni_block(notebook_session, quickstart):
    nb = Executed(notebook_session, "02_omni_block")
    res = nb.results
    sizes = res["paper_sizes"]  # docs/method.md: measured on the released code
    assert sizes["encoder (frozen)"] == 8_170_304 and sizes["neck"] == 1_458_304
    assert sizes["decoder, resampled FFN (released)"] == 20_298_304
    assert sizes["decoder, learned FFN (our default)"] == 20_298_304 + 6_231_296
    assert res["ffn_two_pass_max_abs_diff"]["learned, trained-like tokens"] == 0.0
    assert res["ffn_two_pass_max_abs_diff"]["resampled, trained-like tokens"] > 0.0
    assert nb.path(res["trained_run"]) == quickstart.path(quickstart.results["run_dir"])  # 00's run, not a new one
    b, heads, tokens, h, w = res["attention_shape"]
    assert (b, heads, tokens) == (1, 8, 16)  # demo preset: 16 learnable query tokens


def test_03_training(training):
    res = training.results
    assert res["steps"] == expected_steps(training.params, demo_trained_on(training.params, len(training.classes())))
    assert sorted(res["config"]["data"]["classes"] or DEMO_CLASSES) == training.classes()
    assert set(res["mean"]) == METRICS
    run_dir = training.path(res["run_dir"])
    for f in ("config.json", "history.csv", "model.safetensors", "metrics.json", "metrics.csv"):
        assert (run_dir / f).is_file(), f


def test_04_evaluation_two_protocols(notebook_session):
    nb = Executed(notebook_session, "04_evaluation")
    source = Executed(notebook_session, RUN_SOURCES["04_evaluation"])  # the run 04 is given (03's default run)
    res = nb.results
    classes = source.classes()
    assert nb.path(res["run_dir"]) == source.path(source.results["run_dir"])
    assert sorted(res["per_class"]) == classes and res["num_images"] == DEMO_TEST * len(classes)
    assert res["metrics"]["protocol"] == "kit" and res["released"]["protocol"] == "released"
    for c in classes:
        kit, rel = res["kit_from_stored_maps"]["per_class"][c], res["released"]["per_class"][c]
        for m in ("image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap"):
            assert kit[m] == rel[m], (c, m)  # protocols differ only in pixel F1-max and AU-PRO
        low, high = res["image_auroc_ci"][c]
        assert low <= high and 0 <= low and high <= 100
    # 04's table is the run's final evaluation (same model, same data, float32 maps); the stored float16 maps
    # move the pixel metrics by at most a few tenths
    assert res["mean"] == pytest.approx(source.results["mean"], abs=1e-9)
    assert res["kit_from_stored_maps"]["mean"] == pytest.approx(source.results["mean"], abs=0.3)
    assert 0 < res["defect_pixel_fraction"] < 0.1


def _config_value(run_dir: Path, key: str):
    """``section.name`` of a run's saved config (``knn.*``: its knn.json); ``KeyError`` when not saved there."""
    section, name = key.split(".", 1)
    if section == "knn":
        return json.loads((run_dir / "knn.json").read_text())[name]
    return json.loads((run_dir / "config.json").read_text())[section][name]


def test_05_ablations(notebook_session):
    nb = Executed(notebook_session, "05_ablations")
    res, variants, seeds = nb.results, nb.params["variants"], nb.params["seeds"]
    knn = {v for v, over in variants.items() if "method=knn" in over}
    assert [(r["variant"], r["seed"], r["steps"]) for r in res["runs"]] == [
        (v, s, 0 if v in knn else nb.params["iterations"]) for v in variants for s in seeds]
    for r in res["runs"]:  # each run directory holds its variant's settings and seed
        run_dir = nb.path(r["run_dir"])
        assert _config_value(run_dir, "train.seed") == r["seed"]
        for override in variants[r["variant"]]:
            key, value = override.split("=", 1)
            if key != "method":
                assert _config_value(run_dir, key) == yaml.safe_load(value), (r["variant"], override)
        assert (run_dir / "knn.json").is_file() == (r["variant"] in knn)  # the baseline's run directory
    reference = nb.params.get("reference") or next(iter(variants))
    assert list(res["summary"]) == list(variants) and res["reference"] == reference
    for v in variants:  # the table's mean is the mean of the runs' class means
        scores = [r["image_auroc"] for r in res["runs"] if r["variant"] == v]
        assert res["summary"][v]["image_auroc"] == pytest.approx(sum(scores) / len(scores))
        assert res["summary"][v]["image_auroc_spread"] == pytest.approx(max(scores) - min(scores))
        judged = res["summary"][v]["mad_beyond_spread"]  # judged against the seed spread (needs 2 seeds)
        assert judged is None if v == reference or len(seeds) < 2 else judged in (True, False)
    assert nb.path(res["plot"]).stat().st_size > 10_000


def test_06_your_own_images(notebook_session):
    nb = Executed(notebook_session, "06_your_own_images")
    res = nb.results
    assert res["format"] == "folder"  # the flat good/bad folder built from the demo data, recognised as such
    # one demo class: 36 train + 10 test good images, 15 defective ones (demo data v3), no masks
    assert res["counts"] == {"train": 37, "test normal": 9, "test anomalous": 15, "masks": 0}
    assert res["mean"]["pixel_auroc"] is None  # no masks: undefined, not 0
    assert 0.0 <= res["mean"]["image_auroc"] <= 100.0
    assert res["n_heldout"] == round(nb.params["val_fraction"] * 37)
    assert res["steps"] == expected_steps(nb.params, 37 - res["n_heldout"])
    assert res["method"] == nb.params["method"] and res["fpr"] == nb.params["fpr"]
    assert res["heldout_false_positives"] <= int(nb.params["fpr"] * res["n_heldout"])
    assert sum(res["decisions"].values()) == 9 + 15  # every test image decided
    assert res["onnx_same_decisions"] is True and res["onnx_max_map_diff"] < 1e-4
    assert nb.path(res["onnx"]).stat().st_size > 1_000_000


def test_collect_reads_the_executed_notebooks_into_one_table(notebook_session, quickstart, training):
    """The session's notebooks (05 with its smaller schedule): one row per run and class, parameters as columns."""
    ablations = Executed(notebook_session, "05_ablations")
    table = collect(str(quickstart.run.folder.parent / "**" / "results.json"))
    rows = table[table["notebook"] == "00_quickstart"]
    assert sorted(rows["class"]) == sorted([*DEMO_CLASSES, "mean"])
    assert set(METRICS) <= set(table.columns) and {"param.preset", "train.seed", "model.encoder"} <= set(table)
    mean = rows[rows["class"] == "mean"].iloc[0]
    assert mean["image_auroc"] == quickstart.results["mean"]["image_auroc"]
    assert mean["run_dir"] == quickstart.record["run_dir"]
    assert set(table[table["notebook"] == "03_training"]["class"]) >= {*training.classes(), "mean"}
    ran = table[table["notebook"] == "05_ablations"]
    assert len(ran) and (ran["param.iterations"] == ablations.record["parameters"]["iterations"]).all()
    assert table["version.torch"].notna().all()  # every record names the torch it ran with


# -- bad parameters: papermill in this checkout, each run stops in the first cells ----------------------------
BAD_03 = {  # parameter → the message 03 must stop with: one per cell that checks (each message of
    # experiment_from_params is unit-tested in tests/test_notebook_params.py)
    "preset": ({"preset": "paper-mvtek"}, "unknown preset 'paper-mvtek'"),       # the runtime cell
    "overrides": ({"overrides": ["model.ffn=fast"]}, "ModelConfig.ffn='fast'"),  # the configuration cell
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory) -> dict:
    """Every bad-parameter execution of this file, two at a time (``notebook_session.run_failing``)."""
    cases = {"05-variant": (NOTEBOOKS / "05_ablations.ipynb",
                            {"variants": {"base": [], "typo": ["model.ffn=fast"]}, "seeds": [0, 1]}),
             "06-fpr": (NOTEBOOKS / "06_your_own_images.ipynb", {"fpr": 0.7})}
    cases.update({f"03-{k}": (NOTEBOOKS / "03_training.ipynb", params) for k, (params, _) in BAD_03.items()})
    return run_failing(cases, tmp_path_factory.mktemp("bad_parameters"))


def test_05_bad_variant_fails_in_first_cells(bad_runs):
    err = bad_runs["05-variant"]
    assert err is not None, "05 ran through with a bad variant"
    assert "variant 'typo'" in err["message"] and "ModelConfig.ffn='fast'" in err["message"]
    assert err["exec_count"] <= 5  # Colab cell, parameters, injected parameters, runtime cell, then the check


def test_06_bad_parameters_fail_in_first_cells(bad_runs):
    err = bad_runs["06-fpr"]
    assert err is not None and "must be a false-positive rate in (0, 0.5)" in err["message"]
    assert err["exec_count"] <= 5


@pytest.mark.parametrize("key", BAD_03)
def test_03_bad_parameters_fail_in_first_cells(bad_runs, key):
    err = bad_runs[f"03-{key}"]
    assert err is not None and BAD_03[key][1] in err["message"], err
    # Colab install cell, parameters, injected parameters, runtime cell, then the check fails
    assert err["exec_count"] <= 5
