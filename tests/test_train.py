"""Training engine: recipe pieces, bit-exact resume, faults, run directory (tiny CPU configs)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import TINY_MODEL, make_tiny_mvtec, tiny_config
from safetensors.torch import load_file

from omniad_lite.config import TrainConfig
from omniad_lite.errors import MetricWarning
from omniad_lite.run import RunDir
from omniad_lite.training import param_groups, train
from omniad_lite.training.optim import build_optimizer, build_scheduler, lr_drop_step, lr_schedule
from omniad_lite.training.step import resolve_precision


def _state(run: Path) -> dict:
    """The training state of the run's newest checkpoint."""
    steps = RunDir(run).checkpoint_steps()
    return torch.load(RunDir(run).checkpoint_dir(steps[-1]) / RunDir.STATE, weights_only=True)


def read_history(run_dir: Path) -> list[dict[str, float]]:
    return RunDir(run_dir).read_history()


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_param_groups_decay_only_weights():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    decay, no_decay = param_groups(net, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[2].weight)}
    assert {id(p) for p in no_decay["params"]} == {id(net[0].bias), id(net[1].weight), id(net[1].bias),
                                                   id(net[2].bias)}


def test_resolve_precision_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        resolve_precision("fp16", cpu)


@pytest.mark.parametrize("epochs,steps_per_epoch,drop", [(7, 3, 15), (1000, 226, 800 * 226), (100, 7, 560), (1, 5, 5)])
def test_lr_drop_step_as_released(epochs, steps_per_epoch, drop):
    """Released: decay_epochs = int(0.8 · epochs), counted in iterations → int(0.8 · epochs) · steps_per_epoch.

    At 7 epochs of 3 steps that is step 5 · 3 = 15, where int(0.8 · 21) would give 16; one epoch has no drop.
    """
    cfg = TrainConfig(epochs=epochs)
    assert lr_drop_step(cfg, epochs * steps_per_epoch, steps_per_epoch) == drop
    net = torch.nn.Linear(2, 2)
    opt = build_optimizer(cfg, net)
    sched = build_scheduler(opt, cfg, epochs * steps_per_epoch, steps_per_epoch)
    lrs = []
    for _ in range(min(epochs * steps_per_epoch, 20)):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    n_full = min(drop, len(lrs))
    assert lrs[:n_full] == [1e-3] * n_full and lrs[n_full:] == pytest.approx([1e-4] * (len(lrs) - n_full))


@pytest.mark.parametrize("cfg, steps_per_epoch, batch", [
    (TrainConfig(epochs=7), 3, None), (TrainConfig(epochs=4, lr=4e-3), 5, 8), (TrainConfig(iterations=9), 2, 32)])
def test_lr_schedule_is_what_the_scheduler_steps_through(cfg, steps_per_epoch, batch):
    total = cfg.iterations or cfg.epochs * steps_per_epoch
    opt = build_optimizer(cfg, torch.nn.Linear(2, 2), batch_size=batch)
    sched = build_scheduler(opt, cfg, total, steps_per_epoch)
    stepped = []
    for _ in range(total):
        stepped.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lr_schedule(cfg, total, steps_per_epoch, batch_size=batch).tolist() == pytest.approx(stepped, rel=1e-12)
    assert stepped[0] == pytest.approx(cfg.lr * (batch or cfg.batch_size) / 16)  # the linear scaling rule


def test_lr_drop_with_iterations_is_a_fraction_of_the_iterations():
    cfg = TrainConfig(iterations=7)
    assert lr_drop_step(cfg, 7, steps_per_epoch=3) == 5  # int(0.8 · 7), no epoch rounding


@pytest.mark.slow
def test_lr_drop_at_epoch_boundary_in_a_run(tiny_root, tmp_path):
    """7 epochs of 2 steps (16 images, batch 8): released drop at step 5 · 2 = 10, not int(0.8 · 14) = 11."""
    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=None, epochs=7, batch_size=8, checkpoint_every=100)
    cfg = cfg.with_overrides({"data.val_fraction": 0.0})  # all 16 train images: 2 steps per epoch
    train(cfg, tmp_path / "run", progress=False, max_steps=10)
    lrs = [r["lr"] for r in read_history(tmp_path / "run")]  # the lr after each step's scheduler update
    assert len(lrs) == 10  # lr 1e-3 · 8/16; the row of step s shows the lr of the next step
    assert lrs[:9] == pytest.approx([5e-4] * 9) and lrs[9] == pytest.approx(5e-5)


def test_colab_sized_preset_trains_with_a_small_model(tiny_root, tmp_path):
    """A few steps of ``paper-mvtec-100`` as given (100 epochs, batch 16 → 4 here, lr scaled), the tiny model."""
    import dataclasses

    from omniad_lite import presets
    from omniad_lite.config import ModelConfig

    cfg = presets.get("paper-mvtec-100").with_overrides({"data.root": str(tiny_root), "train.device": "cpu",
                                                          "train.batch_size": 4, "data.cache_dir": str(tmp_path / "c")})
    cfg = dataclasses.replace(cfg, model=ModelConfig(**TINY_MODEL))
    result = train(cfg, tmp_path / "run", progress=False, max_steps=3)
    assert result.steps == 3 and not result.finished
    saved = RunDir(tmp_path / "run").load_config()
    assert (saved.name, saved.train.epochs, saved.data.val_fraction) == ("paper-mvtec-100", 100, 0.0)
    steps_per_epoch = 16 // 4  # 2 classes × 8 train images, every one trained on (val_fraction 0), batch 4
    assert lr_drop_step(saved.train, 100 * steps_per_epoch, steps_per_epoch) == 80 * steps_per_epoch
    lrs = [r["lr"] for r in read_history(tmp_path / "run")]
    assert lrs and lrs == pytest.approx([1e-3 * 4 / 16] * len(lrs))  # the released lr scaled to the batch, no drop yet


def test_resume_is_bit_exact_and_lr_schedule(tiny_root, tmp_path):
    """6 steps straight == 3 + resume + 3 == killed after step 5 (last checkpoint 4) + resume."""
    cfg = tiny_config(tiny_root, tmp_path / "cache")
    straight = train(cfg, tmp_path / "a", progress=False, max_steps=6)
    assert straight.steps == 6 and straight.evaluation is None and not straight.finished

    train(cfg, tmp_path / "b", progress=False, max_steps=3)
    state = _state(tmp_path / "b")
    assert state["step"] == 3
    train(cfg, tmp_path / "b", resume=True, progress=False, max_steps=6)

    def crash(step, model):
        if step == 5:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "c", progress=False, callback=crash)
    assert _state(tmp_path / "c")["step"] == 4
    assert len(read_history(tmp_path / "c")) == 5  # step 5 was logged, then lost
    train(cfg, tmp_path / "c", resume=True, progress=False, max_steps=6)

    ref, ref_hist = _weights(tmp_path / "a"), read_history(tmp_path / "a")
    assert [r["step"] for r in ref_hist] == [1, 2, 3, 4, 5, 6]
    for other in ("b", "c"):
        w = _weights(tmp_path / other)
        assert w.keys() == ref.keys()
        assert all(torch.equal(w[k], ref[k]) for k in ref), other
        hist = read_history(tmp_path / other)
        assert [(r["step"], r["loss"], r["lr"]) for r in hist] == [(r["step"], r["loss"], r["lr"]) for r in ref_hist]
    # lr = 1e-3 * 4/16, ×0.1 from step int(0.8 * 7) = 5 on (the row logs the lr after the step's update)
    lrs = [r["lr"] for r in ref_hist]
    assert lrs[:4] == pytest.approx([2.5e-4] * 4) and lrs[4:] == pytest.approx([2.5e-5] * 2)
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in ref_hist)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["versions"]["torch"] == torch.__version__ and saved["train"]["seed"] == 3


def test_training_changes_only_trainable_weights(tiny_root, tmp_path):
    from omniad_lite.env import seed_everything
    from omniad_lite.model import build_model

    cfg = tiny_config(tiny_root, tmp_path / "cache")
    train(cfg, tmp_path / "run", progress=False, max_steps=2)
    seed_everything(cfg.train.seed)
    init = build_model(cfg.model).state_dict()
    after = _weights(tmp_path / "run")
    enc = [k for k in init if k.startswith("encoder.")]
    dec = [k for k in init if k.startswith("decoder.") and init[k].is_floating_point()]
    assert enc and all(torch.equal(init[k], after[k]) for k in enc)  # frozen teacher, BN stats included
    assert any(not torch.equal(init[k], after[k]) for k in dec)


def test_refuses_existing_run_and_overwrite(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path / "cache")
    train(cfg, tmp_path / "run", progress=False, max_steps=1)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, tmp_path / "run", progress=False, max_steps=1)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    train(cfg, tmp_path / "run", overwrite=True, progress=False, max_steps=2)
    assert [r["step"] for r in read_history(tmp_path / "run")] == [1, 2]
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"  # only run files are replaced


def test_resume_with_other_config_lists_keys(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path / "cache")
    train(cfg, tmp_path / "run", progress=False, max_steps=1)
    other = cfg.with_overrides({"train.lr": 0.01, "model.jitter_scale": 0.0})
    with pytest.raises(ValueError, match=r"model\.jitter_scale.*train\.lr"):
        train(other, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        train(cfg, tmp_path / "empty", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path / "cache")

    def poison(step, model):
        if step == 3:
            with torch.no_grad():
                next(model.neck.parameters()).fill_(float("nan"))

    with pytest.raises(RuntimeError, match="nan.*last good checkpoint"):
        train(cfg, tmp_path / "run", progress=False, callback=poison)
    assert _state(tmp_path / "run")["step"] == 2
    assert all(torch.isfinite(t).all() for t in _weights(tmp_path / "run").values() if t.is_floating_point())
    # the kept checkpoint resumes
    train(cfg, tmp_path / "run", resume=True, progress=False, max_steps=3)


def test_bad_data_fails_before_any_work(tmp_path):
    cfg = tiny_config(tmp_path / "missing", tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="missing"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    empty = tmp_path / "empty"
    (empty / "alpha" / "train" / "good").mkdir(parents=True)
    with pytest.raises(ValueError, match="no train images"):
        train(tiny_config(empty, tmp_path / "cache"), tmp_path / "run2", progress=False)
    assert not (tmp_path / "run2").exists()
    small = make_tiny_mvtec(tmp_path / "small", classes=("alpha",), n_train=3)
    with pytest.raises(ValueError, match="batch_size"):
        train(tiny_config(small, tmp_path / "cache"), tmp_path / "run3", progress=False)


def test_teacher_cache_matches_encoder(tiny_root, tmp_path):
    """Cached (fp16) teacher features give the same run as recomputing them, up to fp16 rounding."""
    base = tiny_config(tiny_root, tmp_path / "cache").with_overrides({"model.jitter_scale": 0.0})
    train(base, tmp_path / "ref", progress=False, max_steps=3)
    ref_hist = read_history(tmp_path / "ref")
    for mode in ("memory", "disk"):
        cached = base.with_overrides({"train.cache_teacher_features": mode})
        train(cached, tmp_path / mode, progress=False, max_steps=3)
        hist = read_history(tmp_path / mode)
        assert [r["loss"] for r in hist] == pytest.approx([r["loss"] for r in ref_hist], rel=2e-3)
    assert list((tmp_path / "cache" / "teacher").glob("*/scale0.npy"))


def test_full_run_cli_metrics_and_eval(tiny_root, tmp_path, capsys):
    """`omniad-lite train` to the end (periodic eval each epoch), then `omniad-lite eval` on the run."""
    import pandas as pd

    from omniad_lite.cli import main

    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=None, epochs=2, eval_every=1, log_every=3)
    cfg = cfg.with_overrides({"data.val_fraction": 0.0})  # all 16 train images: 4 steps per epoch
    cfg.save(tmp_path / "cfg.json")
    run = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(run)]) == 0
    assert "mean" in capsys.readouterr().out
    assert {p.name for p in run.iterdir()} >= {"config.json", "history.csv", "model.safetensors",
                                                "checkpoints", "metrics.json", "metrics.csv"}
    assert RunDir(run).checkpoint_steps() == [8]  # only the newest checkpoint is kept
    hist = read_history(run)
    assert [r["step"] for r in hist] == [3, 4, 6, 8]  # every 3 steps and at each epoch end (4 steps/epoch)
    metrics = json.loads((run / "metrics.json").read_text())
    table = pd.read_csv(run / "metrics.csv", index_col=0)
    assert list(table.index) == ["alpha", "beta", "mean"]
    assert metrics["headline"] == "final" and metrics["step"] == 8
    assert metrics["final"]["mean"]["image_auroc"] == pytest.approx(table.loc["mean", "image_auroc"], abs=0.01)
    best = metrics["best_over_training"]
    assert [e["epoch"] for e in best["evaluations"]] == [1, 2]  # epoch 1 periodic, epoch 2 = final
    for k, v in best["mean"].items():
        assert v == max(e["mean"][k] for e in best["evaluations"])
        assert v >= metrics["final"]["mean"][k]
    # a second `train` into the same folder refuses; `eval --replace` re-evaluates the saved model identically
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(run)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    (run / "metrics.csv").unlink()
    assert main(["eval", "--run", str(run), "--device", "cpu", "--batch-size", "3", "--replace"]) == 0
    again = json.loads((run / "metrics.json").read_text())
    assert again["final"]["mean"] == pytest.approx(metrics["final"]["mean"], abs=0.051)  # rounded to 0.1
    assert again["best_over_training"] == metrics["best_over_training"]
    assert (run / "metrics.csv").is_file()


def test_class_without_anomalies_gets_undefined_metrics_not_a_crash(tmp_path):
    """Custom data may have a class with only normal test images: the run still ends with metrics.json."""
    import shutil

    root = make_tiny_mvtec(tmp_path / "data", classes=("alpha", "beta"))
    shutil.rmtree(root / "beta" / "test" / "spot")
    shutil.rmtree(root / "beta" / "ground_truth")
    run = tmp_path / "run"
    with pytest.warns(MetricWarning, match=r"\['beta'\]"):  # a note, not an error
        train(tiny_config(root, tmp_path / "cache", iterations=2), run, progress=False)
    metrics = json.loads((run / "metrics.json").read_text())
    per_class = metrics["final"]["per_class"]
    assert per_class["beta"]["image_auroc"] is None  # NaN in the table, null in JSON
    assert 0.0 <= per_class["alpha"]["image_auroc"] <= 100.0


def test_benchmark_and_training_build_the_same_optimizer(tiny_model_config):
    """bench_model times the training engine's optimiser: same parameter groups, lr, betas, eps, decay."""
    import importlib.util

    from omniad_lite import ExperimentConfig
    from omniad_lite.model import build_model
    from omniad_lite.training.optim import build_optimizer

    bench_file = Path(__file__).parents[1] / "benchmarks" / "bench_model.py"
    spec = importlib.util.spec_from_file_location("bench_model", bench_file)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = ExperimentConfig(model=tiny_model_config)
    model = build_model(cfg.model)
    bench_opt, _ = bench.training_parts(model, cfg, batch_size=8)
    train_opt = build_optimizer(cfg.train, model, batch_size=8)

    def groups(opt):
        return [({k: v for k, v in g.items() if k != "params"}, [id(p) for p in g["params"]]) for g in opt.param_groups]

    assert groups(bench_opt) == groups(train_opt)
    decay, no_decay = train_opt.param_groups
    assert decay["weight_decay"] == cfg.train.weight_decay and no_decay["weight_decay"] == 0.0
    assert decay["lr"] == cfg.train.lr * 8 / 16
    assert {id(p) for p in decay["params"]} | {id(p) for p in no_decay["params"]} == \
        {id(p) for p in model.parameters() if p.requires_grad}
