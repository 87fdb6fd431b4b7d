"""omniad_lite.notebook_runs: which run a notebook looks at, and the sentence that says how good it is."""
from __future__ import annotations

from pathlib import Path

import pytest

from omniad_lite import presets
from omniad_lite.notebook_params import NotebookParameterError
from omniad_lite.notebook_runs import DEMO_QUALITY, config_table, is_complete, quality_note, trained_run
from omniad_lite.run import RunDir


def fake_run(path: Path, cfg, image_auroc: float, step: int = 330, model: bool = True) -> Path:
    run = RunDir(path)
    run.save_config(cfg)
    if model:
        (path / RunDir.MODEL).write_bytes(b"")
    run.write_metrics({"headline": "final", "step": step, "final": {"mean": {"image_auroc": image_auroc}}}, "")
    return path


def test_full_demo_run_is_demo_quality(tmp_path):
    run = fake_run(tmp_path / "a", presets.get("demo"), DEMO_QUALITY + 0.6)
    note = quality_note(run)
    assert note == (f"Trained run (demo preset, 330 steps, mean image AUROC {DEMO_QUALITY + 0.6:.1f}): demo quality "
                    f"(≥ {DEMO_QUALITY:.0f} on the demo data).")
    assert "**" not in note


@pytest.mark.parametrize("overrides, auroc", [({"train.epochs": 3}, 99.0), ({"train.iterations": 3}, 99.0),
                                               ({}, DEMO_QUALITY - 0.1)])
def test_short_or_weak_demo_run_says_so_in_bold(tmp_path, overrides, auroc):
    note = quality_note(fake_run(tmp_path / "a", presets.get("demo").with_overrides(overrides), auroc, step=33))
    assert note.startswith("**Smoke run (demo preset, 33 steps") and note.endswith("**")
    assert f"reaches mean image AUROC ≥ {DEMO_QUALITY:.0f}" in note and "30 epochs" in note


def test_short_paper_run_is_called_short(tmp_path):
    cfg = presets.get("paper-mvtec").with_overrides({"train.epochs": 5, "data.root": str(tmp_path)})
    note = quality_note(fake_run(tmp_path / "a", cfg, 80.0))
    assert note.startswith("**Short run (paper-mvtec preset") and "1000 epochs" in note
    full = presets.get("paper-mvtec").with_overrides({"data.root": str(tmp_path)})
    assert quality_note(fake_run(tmp_path / "b", full, 98.0)).startswith("Trained run (paper-mvtec")


def test_trained_run_prefers_the_given_then_the_candidates(tmp_path, monkeypatch):
    import omniad_lite.training

    calls = []
    monkeypatch.setattr(omniad_lite.training, "train",
                        lambda cfg, out, overwrite: calls.append(cfg) or fake_run(Path(out), cfg, 96.0))
    first, second = tmp_path / "00", tmp_path / "03"
    fake_run(second, presets.get("demo"), 96.0)
    fake_run(first, presets.get("demo"), 96.0, model=False)  # unfinished: skipped
    assert not is_complete(first) and is_complete(second)
    assert trained_run(None, [first, second], tmp_path / "fallback") == second
    assert trained_run(str(second), [], tmp_path / "fallback") == second
    with pytest.raises(NotebookParameterError, match=r"parameter run_dir='.*00' holds no finished run"):
        trained_run(str(first), [], tmp_path / "fallback")
    assert calls == []
    got = trained_run(None, [tmp_path / "none"], tmp_path / "fallback", device="cpu")
    assert got == tmp_path / "fallback" and len(calls) == 1
    assert calls[0].name == "demo" and calls[0].train.epochs == presets.get("demo").train.epochs  # full schedule
    assert trained_run(None, [tmp_path / "none"], tmp_path / "fallback") == got and len(calls) == 1  # reused


def test_config_table_shows_the_settings_that_matter():
    cfg = presets.get("demo").with_overrides({"train.epochs": 7, "model.ffn": "resampled"})
    table = config_table(cfg)
    assert 5 <= len(table) <= 10
    values = table["value"].to_dict()
    assert values["schedule"].startswith("7 epochs, batch 16") and values["FFN"] == "resampled"
    assert values["data"] == "offline demo data" and values["decoder depths"] == "(1, 2, 2, 1)"
    assert max(len(line) for line in table.to_string().splitlines()) <= 100
