"""Runs that survive faults: atomic checkpoints under injected write failures, damaged checkpoints,
kills before the first checkpoint, non-finite weights, test-split problems found before training, unreadable
and high-bit-depth images, one-line CLI errors, and ``eval`` writing beside a run's metrics."""
from __future__ import annotations

import errno
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_tiny_mvtec, tiny_config
from PIL import Image
from safetensors.torch import load_file

from omniad_lite import integrity
from omniad_lite.cli import main
from omniad_lite.data import load_samples
from omniad_lite.data.images import header_size, load_image
from omniad_lite.errors import RecoveryWarning
from omniad_lite.evaluation.run_loading import load_run
from omniad_lite.files import NoSpaceError, is_temp
from omniad_lite.run import RunDir
from omniad_lite.training import checkpoint as ckpt
from omniad_lite.training import train


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / RunDir.MODEL))


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def intact(run: Path, step: int) -> None:
    """The run's only checkpoint is ``step``, whole and matching its hashes; the run's model is that step's."""
    rd = RunDir(run)
    assert rd.checkpoint_steps() == [step]
    assert integrity.verify_folder(rd.checkpoint_dir(step), [RunDir.MODEL, RunDir.STATE])[1] is None
    assert rd.model_metadata()["step"] == str(step)
    assert not [p for p in run.rglob("*") if is_temp(p.name)]


def fail_at(monkeypatch, target, name: str, step: int, error: BaseException, step_of, partial=None) -> None:
    """Make ``target.name`` raise ``error`` when called for ``step`` (``step_of(args)`` reads the step), after
    writing ``partial`` bytes to its second argument (a half-written file) when given."""
    real = getattr(target, name)

    def fake(*args, **kwargs):
        if step_of(args) == step:
            if partial is not None:
                Path(args[1]).write_bytes(partial)
            raise error
        return real(*args, **kwargs)
    monkeypatch.setattr(target, name, fake)


# -- atomic checkpoints --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_failed_checkpoint_writes_keep_the_previous_checkpoint(tiny_root, tmp_path, monkeypatch):
    """Disk full on the second file, an interrupt before the manifest, an I/O error at the rename: each time
    the previous checkpoint stays complete, and resuming after all of them ends bit-exact."""
    cfg = tiny_config(tiny_root, tmp_path / "cache")
    train(cfg, tmp_path / "ref", progress=False, max_steps=6)
    run = tmp_path / "run"

    fail_at(monkeypatch, torch, "save", 4, OSError(errno.ENOSPC, "No space left on device"), lambda a: a[0]["step"],
            partial=b"half a train_state.pt")
    with pytest.raises(NoSpaceError, match=r"^no space left on .*checkpoints for the checkpoint of step 4 \(needs "
                                           r"[\d.]+ MiB\); free space there, then --resume \(the previous "
                                           r"checkpoint \(step 2\) is kept\)"):
        train(cfg, run, progress=False, max_steps=6)
    monkeypatch.undo()
    intact(run, 2)

    fail_at(monkeypatch, ckpt, "write_manifest", 4, KeyboardInterrupt(), lambda a: a[2]["step"])
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, resume=True, progress=False, max_steps=6)
    monkeypatch.undo()
    intact(run, 2)

    real_rename = Path.rename

    def rename(self, target):
        if Path(target).name == "step-00000006":
            raise OSError(errno.EIO, "Input/output error")
        return real_rename(self, target)
    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(RuntimeError, match=r"could not write the checkpoint of step 6 .*Input/output error.*"
                                           r"previous checkpoint \(step 4\) is kept"):
        train(cfg, run, resume=True, progress=False, max_steps=6)
    monkeypatch.undo()
    intact(run, 4)

    train(cfg, run, resume=True, progress=False, max_steps=6)
    intact(run, 6)
    assert same_weights(run, tmp_path / "ref")
    assert RunDir(run).read_history()[-1]["loss"] == RunDir(tmp_path / "ref").read_history()[-1]["loss"]


def test_damaged_checkpoint_is_one_line_and_an_older_one_is_used(tiny_root, tmp_path, capsys):
    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=3)
    cfg.save(tmp_path / "cfg.json")
    run = tmp_path / "run"
    train(cfg, run, progress=False, max_steps=2)
    good = RunDir(run).checkpoint_dir(2)
    newer = RunDir(run).checkpoint_dir(3)
    shutil.copytree(good, newer)  # a second checkpoint, then damaged: resume falls back to step 2
    with open(newer / RunDir.STATE, "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 50)
    with pytest.warns(RecoveryWarning, match="step-00000003: train_state.pt does not match its recorded SHA-256"):
        train(cfg, run, resume=True, progress=False, max_steps=2)
    assert RunDir(run).checkpoint_steps() == [2]
    # the only checkpoint damaged: one line naming the file and --overwrite, exit code 2
    with open(good / RunDir.STATE, "r+b") as f:
        f.truncate(1000)
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "step-00000002: train_state.pt is truncated" in err[0] and "--overwrite" in err[0]
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(run), "--overwrite"]) == 0


def test_tampered_or_truncated_model_is_one_line_naming_the_file(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config(tiny_root, tmp_path / "cache", iterations=2), run, progress=False, max_steps=2)
    capsys.readouterr()  # what training printed (its threshold note) is not the predict command's
    model = run / RunDir.MODEL
    size = model.stat().st_size
    with open(model, "r+b") as f:  # same size, different bytes (a hard link: the checkpoint's too)
        f.seek(size - 100)
        f.write(b"\x7f" * 50)
    integrity.forget(model)
    for damage in ("does not match its recorded SHA-256", "truncated or corrupt"):
        with pytest.raises(RuntimeError, match=rf"{model}.*{damage}.*--overwrite"):
            load_run(run)
        img = next(Path(tiny_root).rglob("*.png"))
        assert main(["predict", "--run", str(run), str(img), "--out", str(tmp_path / "p")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(model) in err[0] and "--overwrite" in err[0]
        with open(model, "r+b") as f:
            f.truncate(6)


def test_run_killed_before_its_first_checkpoint_resumes(tiny_root, tmp_path, capsys):
    cfg = tiny_config(tiny_root, tmp_path / "cache", checkpoint_every=4)
    cfg.save(tmp_path / "cfg.json")
    args = ["train", "--config", str(tmp_path / "cfg.json"), "--out"]

    def kill(step, model):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", progress=False, callback=kill)
    assert RunDir(tmp_path / "run").checkpoint_steps() == []
    assert main([*args, str(tmp_path / "run")]) == 2
    assert "--resume" in capsys.readouterr().err
    with pytest.warns(RecoveryWarning, match="holds no checkpoint yet .*starting it from step 0"):
        train(cfg, tmp_path / "run", resume=True, progress=False, max_steps=2)
    train(cfg, tmp_path / "ref", progress=False, max_steps=2)
    assert same_weights(tmp_path / "run", tmp_path / "ref")
    # killed even earlier (only the lock was there): --resume says to start without it, which works
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / RunDir.LOCK).write_text('{"pid": 999999999, "host": "x"}')
    assert main([*args, str(tmp_path / "early"), "--resume"]) == 2
    assert "holds no run" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "early"), "--set", "train.iterations=1"]) == 0


def test_non_finite_weights_are_never_checkpointed(tiny_root, tmp_path, monkeypatch):
    """The loss of step 4 is finite, but its update overflows: the checkpoint of step 2 is the one kept."""
    from omniad_lite.training import loop

    real_step, count = loop.optimizer_step, [0]

    def overflowing(loss, optimizer, *args):
        real_step(loss, optimizer, *args)
        count[0] += 1
        if count[0] == 4:
            with torch.no_grad():
                optimizer.param_groups[0]["params"][0].fill_(float("inf"))

    monkeypatch.setattr(loop, "optimizer_step", overflowing)
    cfg = tiny_config(tiny_root, tmp_path / "cache")
    with pytest.raises(RuntimeError, match=r"weights became inf/NaN at or before step 4.*last good checkpoint .*"
                                           r"\(step 2\) is kept"):
        train(cfg, tmp_path / "run", progress=False)
    monkeypatch.undo()
    intact(tmp_path / "run", 2)
    assert all(torch.isfinite(t).all() for t in weights(tmp_path / "run").values() if t.is_floating_point())
    assert train(cfg, tmp_path / "run", resume=True, progress=False, max_steps=3).steps == 3


# -- the test split is checked before training ------------------------------------------------------------------------
@pytest.mark.parametrize("problem, cache_images, message", [
    ("mask size", True, r"mask .*000_mask.png is 40x40 but its image .*000.png is 48x48"),
    ("mask size", False, r"mask .*000_mask.png is 40x40 but its image .*000.png is 48x48"),
    ("missing mask", True, r"anomalous image .*beta/test/spot/001.png has no mask"),
    ("no test folder", True, r"\['beta'\] have no test images"),
])
def test_test_split_problems_stop_the_run_before_training(problem, cache_images, message, tmp_path):
    root = make_tiny_mvtec(tmp_path / "data")
    if problem == "mask size":
        Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "beta/ground_truth/spot/000_mask.png")
    elif problem == "missing mask":
        (root / "beta/ground_truth/spot/001_mask.png").unlink()
    else:
        shutil.rmtree(root / "beta/test")
    cfg = tiny_config(root, tmp_path / "cache").with_overrides({"data.cache_images": cache_images})
    steps = []
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        train(cfg, tmp_path / "run", progress=False, callback=lambda step, model: steps.append(step))
    assert steps == [] and not (tmp_path / "run").exists()


# -- images --------------------------------------------------------------------------------------------------------
def png_header_only(path: Path, width: int, height: int) -> None:
    """A valid PNG signature and header announcing ``width x height`` pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_decompression_bomb_and_other_unreadable_images_are_one_line(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    png_header_only(bomb, 20000, 20000)  # 400 M pixels
    for read in (lambda: header_size(bomb), lambda: load_image(bomb, 32)):
        with pytest.raises(RuntimeError, match=r"^cannot read image .*bomb.png \(.*pixels.*\); resize the image, "
                                               r"or raise PIL.Image.MAX_IMAGE_PIXELS") as e:
            read()
        assert "\n" not in str(e.value)
    odd = tmp_path / "odd.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(odd)

    def broken(*args, **kwargs):
        raise struct.error("unpack requires a buffer of 4 bytes")  # what some malformed TIFF tags raise
    monkeypatch.setattr(Image, "open", broken)
    with pytest.raises(RuntimeError, match=r"^cannot read image .*odd.png \(unpack requires.*\); the file is "
                                           r"corrupt or not an image"):
        load_image(odd, 8)


def test_high_bit_depth_images_use_fixed_scales(tmp_path):
    """16-bit: value * 255 / 65535 whatever the image's own range; float: 0..1 -> 0..255, clipped."""
    bright = np.array([[0, 32896, 65535, 65535]], np.uint16).repeat(4, 0)
    dark = np.array([[0, 500, 1000, 1000]], np.uint16).repeat(4, 0)  # a dim image stays dim
    for arr, expected in ((bright, [0, 128, 255, 255]), (dark, [0, 2, 4, 4])):
        Image.fromarray(arr).save(tmp_path / "i16.png")
        assert Image.open(tmp_path / "i16.png").mode.startswith("I")
        got = load_image(tmp_path / "i16.png", 4)
        assert got[0, :, 0].tolist() == expected and (got[..., 0] == got[..., 2]).all()
    floats = np.array([[0.0, 0.25, 1.0, 2.0]], np.float32).repeat(4, 0)
    floats[3, 0] = -1.0
    Image.fromarray(floats, mode="F").save(tmp_path / "f.tif")
    got = load_image(tmp_path / "f.tif", 4)[..., 0]
    assert got[0].tolist() == [0, 64, 255, 255] and got[3, 0] == 0


# -- CLI errors and eval beside the metrics ------------------------------------------------------------------------
def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    from omniad_lite import cli

    def failing(args):
        np.linalg.inv(np.zeros((2, 2)))
    monkeypatch.setitem(cli.COMMANDS, "presets", failing)
    assert main(["presets"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unexpected LinAlgError" in err[0] and "Singular matrix" in err[0] and "--debug" in err[0]
    for argv in (["--debug", "presets"], ["presets", "--debug"]):
        with pytest.raises(np.linalg.LinAlgError):
            main(argv)


@pytest.mark.slow
def test_eval_writes_beside_the_metrics_and_never_uses_damaged_data(tiny_root, tmp_path, capsys):
    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=2)
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    original = (run / RunDir.METRICS).read_bytes()
    n_test = len(load_samples(tiny_root, "mvtec", "test"))
    (test_cache,) = [p.parent for p in (tmp_path / "cache" / "images").glob("*/meta.json")
                     if json.loads(p.read_text())["n"] == n_test]
    with open(test_cache / "images.u8", "r+b") as f:  # garbled test images, same size
        f.write(bytes(range(256)) * 64)
    integrity.forget(test_cache / "images.u8")
    capsys.readouterr()
    with pytest.warns(RecoveryWarning, match=r"image cache .* is damaged .*; rebuilding it"):
        assert main(["eval", "--run", str(run), "--device", "cpu", "--batch-size", "4"]) == 0
    out, _ = capsys.readouterr()
    assert (run / RunDir.METRICS).read_bytes() == original  # the run's own metrics are untouched
    (beside,) = (run / RunDir.EVALUATIONS).glob("*-kit.json")
    assert str(beside) in out and (beside.with_suffix(".csv")).is_file()
    trained = json.loads(original)["final"]["mean"]
    assert json.loads(beside.read_text())["final"]["mean"] == pytest.approx(trained, abs=0.051)
    assert main(["eval", "--run", str(run), "--device", "cpu", "--protocol", "released", "--replace"]) == 0
    assert json.loads((run / RunDir.METRICS).read_text())["protocol"] == "released"


def test_history_row_cut_short_by_a_kill_is_skipped(tmp_path):
    run = RunDir(tmp_path)
    run.open_history(keep_until_step=0)
    for step in (1, 2):
        run.append_history({"step": step, "epoch": step / 4, "loss": 0.5, "lr": 1e-3, "images_per_s": 9.0})
    with open(tmp_path / RunDir.HISTORY, "a") as f:
        f.write("3,0.75,0.4")  # the process died in the middle of this row
    assert [r["step"] for r in run.read_history()] == [1.0, 2.0]
    run.open_history(keep_until_step=2)  # what a resume from step 2 does
    assert (tmp_path / RunDir.HISTORY).read_text().splitlines()[-1] == "2,0.5,0.5,0.001,9.0"
