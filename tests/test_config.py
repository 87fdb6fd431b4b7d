"""Configs: JSON round-trip, unknown keys and wrong types raise, overrides, presets."""
from __future__ import annotations

import json

import pytest

from omniad_lite import presets
from omniad_lite.config import ExperimentConfig, ModelConfig, TrainConfig


@pytest.mark.parametrize("name", presets.names())
def test_presets_round_trip_through_json(name, tmp_path):
    cfg = presets.get(name)
    cfg.save(tmp_path / "config.json")
    back = ExperimentConfig.load(tmp_path / "config.json")
    assert back == cfg
    assert isinstance(back.model.decoder_depths, tuple)


def test_paper_presets_follow_the_released_recipe():
    for name, epochs in [("paper-mvtec", 1000), ("paper-visa", 1000), ("paper-realiad", 100)]:
        cfg = presets.get(name)
        assert cfg.model.encoder == "resnet34"
        assert cfg.model.decoder_depths == (3, 9, 9, 7)
        assert cfg.model.image_size == 256
        assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.seed) == (epochs, 16, 1e-3, 42)
        assert (cfg.train.weight_decay, cfg.train.grad_clip, cfg.train.lr_drop_at) == (1e-4, 5.0, 0.8)
        assert cfg.train.precision == "fp32"  # the released trainer runs fp32 (docs/method.md)
        assert cfg.data.val_fraction == 0  # every normal training image is trained on, as released
    assert presets.get("paper-realiad").data.options["views"] == [1, 2, 3, 4, 5]


def test_colab_sized_preset_is_the_mvtec_recipe_at_100_epochs():
    short, full = presets.get("paper-mvtec-100"), presets.get("paper-mvtec")
    assert (short.train.epochs, full.train.epochs) == (100, 1000)
    short.name, short.train.epochs = full.name, full.train.epochs
    assert short == full  # everything else as released


def test_presets_are_independent_copies():
    a = presets.get("demo")
    a.train.epochs = 12345
    assert presets.get("demo").train.epochs != 12345


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="paper-mvtec"):
        presets.get("paper-mvtex")


def test_unknown_keys_raise_with_valid_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\] in config.train; valid keys"):
        ExperimentConfig.from_dict({"train": {"epoch": 3}})
    with pytest.raises(ValueError, match="unknown key"):
        ExperimentConfig.from_json(json.dumps({"modle": {}}))


def test_wrong_types_raise():
    with pytest.raises(ValueError, match=r"config.train.epochs='2' has type str; expected int"):
        ExperimentConfig.from_dict({"train": {"epochs": "2"}})
    with pytest.raises(ValueError, match="use_global_branch"):
        ExperimentConfig.from_dict({"model": {"use_global_branch": 1}})
    # ints are fine where floats are expected, None where Optional
    cfg = ExperimentConfig.from_dict({"train": {"lr": 1}, "model": {"encoder_weights": None}})
    assert cfg.train.lr == 1 and cfg.model.encoder_weights is None


def test_invalid_values_raise():
    with pytest.raises(ValueError, match="ffn"):
        ModelConfig(ffn="random")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="both be False"):
        ModelConfig(use_global_branch=False, use_local_branch=False)


@pytest.mark.parametrize("amp,precision", [("off", "fp32"), ("auto", "fp32"), ("bf16", "bf16"), ("fp16", "fp16")])
def test_old_configs_with_amp_load_as_precision(amp, precision, tmp_path):
    """Run directories that carry train.amp load (and resume) as train.precision."""
    old = presets.get("demo").to_dict()
    del old["train"]["precision"]
    old["train"]["amp"] = amp
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = ExperimentConfig.load(tmp_path / "config.json")
    assert cfg.train.precision == precision
    assert "amp" not in cfg.to_dict()["train"]
    old["train"]["amp"] = "fp8"
    with pytest.raises(ValueError, match=r"train\.amp='fp8'.*train\.precision"):
        ExperimentConfig.from_dict(old)


def test_overrides_and_diff():
    base = presets.get("paper-mvtec")
    cfg = base.with_overrides(["train.epochs=3", "model.ffn=resampled", "model.decoder_depths=[1,1,1,1]"])
    assert (cfg.train.epochs, cfg.model.ffn, cfg.model.decoder_depths) == (3, "resampled", (1, 1, 1, 1))
    assert sorted(base.diff(cfg)) == ["model.decoder_depths", "model.ffn", "train.epochs"]
    with pytest.raises(ValueError, match="unknown config key 'train.epoch'"):
        base.with_overrides({"train.epoch": 3})
    with pytest.raises(ValueError, match="section.key=value"):
        base.with_overrides(["train.epochs"])


def test_load_ignores_recorded_versions(tmp_path):
    d = presets.get("demo").to_dict()
    d["versions"] = {"torch": "x"}
    (tmp_path / "config.json").write_text(json.dumps(d))
    assert ExperimentConfig.load(tmp_path / "config.json") == presets.get("demo")


def test_training_length_must_be_positive():
    with pytest.raises(ValueError, match="epochs=0 must be >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="iterations=-3 must be >= 1"):
        TrainConfig(iterations=-3)
