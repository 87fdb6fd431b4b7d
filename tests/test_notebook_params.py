"""omniad_lite.notebook_params: notebook parameters → validated ExperimentConfig, clear one-line errors."""
from __future__ import annotations

import pytest

from omniad_lite import presets
from omniad_lite.notebook_params import check_param, experiment_from_params, output_path


def test_params_map_to_config_keys_and_none_keeps_preset():
    cfg = experiment_from_params("demo", ["model.ffn=resampled"], epochs=2, iterations=None, device="cpu",
                                 classes=["brick"], data_root=None)
    base = presets.get("demo")
    assert cfg.train.epochs == 2 and cfg.train.iterations is None and cfg.model.ffn == "resampled"
    assert cfg.data.classes == ["brick"]
    assert base.train.device == "cpu"  # so device="cpu" changes nothing
    assert sorted(cfg.diff(base)) == ["data.classes", "model.ffn", "train.epochs"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(preset="nope"), "unknown preset 'nope'"),
    (dict(preset="demo", epochs="two"), "train.epochs='two' has type str"),
    (dict(preset="demo", batch_size=True), "train.batch_size=True has type bool"),
    (dict(preset="demo", overrides=["model.nope=1"]), "unknown config key 'model.nope'"),
    (dict(preset="demo", overrides="model.ffn=resampled"), "must be a list"),
    (dict(preset="demo", classes="brick"), "must be a list of class names"),
    (dict(preset="demo", lr=1.0), "unknown notebook parameter"),
])
def test_bad_params_raise_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")) as err:
        experiment_from_params(**kwargs)
    assert "\n" not in str(err.value)


def test_check_param_and_output_path(tmp_path):
    assert check_param("n", 3, int, positive=True) == 3
    with pytest.raises(ValueError, match="n=0 must be a positive int"):
        check_param("n", 0, int, positive=True)
    with pytest.raises(ValueError, match="n=True must be int"):
        check_param("n", True, int)
    out = output_path(str(tmp_path / "a" / "b"))
    assert out.is_dir()
    with pytest.raises(ValueError, match="output_dir=3"):
        output_path(3)
