"""``train(..., resume="auto")``: continue the same run, start fresh where nothing was trained, refuse the rest."""
from __future__ import annotations

import shutil

import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file

from omniad_lite.run import RunDir
from omniad_lite.training import train


def test_auto_starts_fresh_then_continues_bit_exactly(tiny_root, tmp_path, capsys):
    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=6)
    straight = train(cfg, tmp_path / "straight", progress=False)
    paused = train(cfg, tmp_path / "auto", resume="auto", progress=False, max_steps=4)  # empty folder: fresh
    assert paused.steps == 4 and paused.evaluation is None
    done = train(cfg, tmp_path / "auto", resume="auto")  # the notebook run again after a disconnect
    assert done.steps == straight.steps == 6 and done.evaluation is not None
    assert "from its checkpoint at step 4 of 6" in capsys.readouterr().out
    a, b = load_file(str(tmp_path / "straight" / RunDir.MODEL)), load_file(str(tmp_path / "auto" / RunDir.MODEL))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    again = train(cfg, tmp_path / "auto", resume="auto", progress=False)  # finished: evaluated again only
    assert again.steps == 6 and again.evaluation is not None


def test_auto_refuses_a_checkpoint_of_another_config(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=6)
    train(cfg, tmp_path / "run", progress=False, max_steps=2)
    other = cfg.with_overrides({"train.lr": 0.01})
    with pytest.raises(ValueError, match=r"another config \(differs in train.lr\).*resume=False"):
        train(other, tmp_path / "run", resume="auto", progress=False)
    assert RunDir(tmp_path / "run").checkpoint_steps() == [2]  # nothing deleted


def test_auto_replaces_only_what_holds_no_training(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=2)
    run = RunDir(tmp_path / "stopped")
    run.save_config(cfg.with_overrides({"train.lr": 0.5}))  # a run killed before its first checkpoint
    run.open_history(keep_until_step=0)
    (run / "notes.txt").write_text("mine")
    assert train(cfg, run.path, resume="auto", progress=False).steps == 2
    assert run.load_config().train.lr == cfg.train.lr and (run / "notes.txt").read_text() == "mine"

    weights_only = RunDir(tmp_path / "weights_only")
    train(cfg, weights_only.path, progress=False)
    shutil.rmtree(weights_only / RunDir.CHECKPOINTS)  # the model stays (a hard link or a copy)
    with pytest.raises(FileExistsError, match="no checkpoint to resume from"):
        train(cfg, weights_only.path, resume="auto", progress=False)


def test_auto_rejects_contradictions(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=2)
    with pytest.raises(ValueError, match="resume='auto' keeps existing runs"):
        train(cfg, tmp_path / "a", resume="auto", overwrite=True, progress=False)
    with pytest.raises(ValueError, match="expected True, False or 'auto'"):
        train(cfg, tmp_path / "b", resume="yes", progress=False)
