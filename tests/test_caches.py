"""Caches that survive corruption, full disks and dead writers, and never change results.

Full disks use a real 2 MB tmpfs where this process may mount one (root), else a monkeypatched
``posix_fallocate`` that fails the way a full disk does (ENOSPC).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file

from omniad_lite import files, integrity
from omniad_lite.data import AnomalyDataset, ImageCache, load_samples
from omniad_lite.data.images import load_pair
from omniad_lite.errors import RecoveryWarning
from omniad_lite.files import NoSpaceError
from omniad_lite.run import RunDir
from omniad_lite.training import train
from omniad_lite.training.teacher_cache import build_cache

SIZE = 64


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 2 MB filesystem: a real tmpfs when mounting works, else ``posix_fallocate`` failing with ENOSPC."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                 capture_output=True).returncode == 0
    except OSError:
        mounted = False
    if not mounted:
        def full(fd, offset, length):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(os, "posix_fallocate", full)
    try:
        yield mnt, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def corrupt(path: Path, offset: int = 0, n: int = 64) -> None:
    """Flip ``n`` bytes in place (same size), as bit rot or a bad copy would."""
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))
    integrity.forget(path)  # same process: drop the remembered hash in case the mtime tick did not move


def truncate(path: Path, keep: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(keep)
    integrity.forget(path)


# -- image cache --------------------------------------------------------------------------------------------
def test_image_cache_damage_is_reported_and_rebuilt(tiny_root, tmp_path):
    samples = load_samples(tiny_root, "mvtec", "test")
    expected = [load_pair(s.image_path, s.mask_path, SIZE) for s in samples]
    cache = ImageCache(samples, SIZE, tmp_path, progress=False)
    assert cache.was_built and not ImageCache(samples, SIZE, tmp_path, progress=False).was_built
    for damage, phrase in ((lambda: corrupt(cache.dir / "images.u8", offset=5000), "does not match its recorded"),
                           (lambda: truncate(cache.dir / "masks.u8", 100), "truncated")):
        damage()
        with pytest.warns(RecoveryWarning) as seen:
            again = ImageCache(samples, SIZE, tmp_path, progress=False)
        err = [str(w.message) for w in seen]
        assert again.was_built and len(err) == 1 and phrase in err[0] and str(cache.dir) in err[0]
        for i, (image, mask) in enumerate(expected):
            got_image, got_mask = again.get(i)
            assert np.array_equal(got_image, image) and np.array_equal(got_mask, mask)


def test_image_cache_full_disk_is_one_line_and_keeps_the_good_cache(tiny_root, tmp_path, small_disk, monkeypatch):
    """No SIGBUS: the memmap is allocated before any write; the cache built before stays usable."""
    disk, mounted = small_disk
    samples = load_samples(tiny_root, "mvtec", "train")
    good = ImageCache(samples[:4], SIZE, disk, progress=False) if mounted else None
    # 16 images at 256 px = 3.1 MB > 2 MB. First the up-front check, then (check disabled) the allocation.
    checks = [lambda *a: files.ensure_free(*a) if mounted else None, lambda *a: None]
    for ensure in checks:
        monkeypatch.setattr("omniad_lite.data.cache.ensure_free", ensure)
        with pytest.raises(NoSpaceError, match=r"^no space left on .*images.* for the image cache \(needs "
                                               r"[\d.]+ MiB, [\d.]+ MiB free\); free space"):
            ImageCache(samples, 256, disk, progress=False)
    leftovers = [p for p in disk.rglob("*") if files.is_temp(p.name)]
    assert not leftovers
    if mounted:
        again = ImageCache(samples[:4], SIZE, disk, progress=False)
        assert not again.was_built and np.array_equal(again.get(3)[0], good.get(3)[0])


def test_dead_writers_temp_files_are_removed(tiny_root, tmp_path):
    samples = load_samples(tiny_root, "mvtec", "test")
    cache = ImageCache(samples, SIZE, tmp_path, progress=False)
    pid = dead_pid()
    dead = [cache.dir / f".images.u8.tmp-{pid}-0123abcd-{files._SAFE_HOST}", cache.dir / f"images.u8.tmp{pid}"]
    live = cache.dir / f".masks.u8.tmp-{os.getpid()}-0123abcd-{files._SAFE_HOST}"
    for p in (*dead, live):
        p.write_bytes(b"x" * 1000)
    demo_tmp = tmp_path / f".demo_v3_seed0.tmp{pid}"  # a killed demo generation (the older temp naming)
    (demo_tmp / "brick").mkdir(parents=True)
    ImageCache(samples, SIZE, tmp_path, progress=False)
    assert not any(p.exists() for p in dead) and live.exists()
    files.remove_stale_temps(tmp_path, legacy=True)  # what demo_root() does first
    assert not demo_tmp.exists()


# -- teacher-feature cache -------------------------------------------------------------------------------------
def _teacher(tiny_model, tiny_root, tmp_path, cache_root: Path):
    ds = AnomalyDataset(load_samples(tiny_root, "mvtec", "train"), tiny_model.preprocess)
    return build_cache("disk", tiny_model.encoder, ds, torch.device("cpu"), cache_root=cache_root, key="k",
                       batch_size=8, autocast=contextlib.nullcontext, channels_last=False, progress=False)


def test_teacher_cache_damage_is_reported_and_rebuilt(tiny_model, tiny_root, tmp_path):
    ref = [np.array(a) for a in _teacher(tiny_model, tiny_root, tmp_path, tmp_path).arrays]
    folder = tmp_path / "teacher" / "k"
    for damage, phrase in ((lambda: corrupt(folder / "scale1.npy", offset=4000), "does not match its recorded"),
                           (lambda: truncate(folder / "scale2.npy", 500), "truncated")):
        damage()
        with pytest.warns(RecoveryWarning) as seen:
            arrays = _teacher(tiny_model, tiny_root, tmp_path, tmp_path).arrays
        err = [str(w.message) for w in seen]
        assert len(err) == 1 and phrase in err[0] and "rebuilding" in err[0]
        assert all(np.array_equal(a, r) for a, r in zip(arrays, ref))
    pid = dead_pid()
    stale = tmp_path / "teacher" / f".k.tmp-{pid}-0123abcd-{files._SAFE_HOST}"
    (stale / "sub").mkdir(parents=True)
    _teacher(tiny_model, tiny_root, tmp_path, tmp_path)
    assert not stale.exists()


def test_building_the_teacher_cache_draws_nothing_from_the_global_rng(tiny_model, tiny_root, tmp_path):
    """The cause of "reuse changes the metrics": building drew a DataLoader seed from the global RNG."""
    torch.manual_seed(0)
    before = torch.get_rng_state()
    _teacher(tiny_model, tiny_root, tmp_path, tmp_path)
    assert torch.equal(torch.get_rng_state(), before)


def test_teacher_cache_full_disk_is_one_line(tiny_model, tiny_root, tmp_path, small_disk):
    disk, mounted = small_disk
    if mounted:  # leave 100 KB: the features of 16 images need 336 KB
        with open(disk / "filler", "wb") as f:
            f.write(b"\0" * (shutil.disk_usage(disk).free - 100 * 1024))
    with pytest.raises(NoSpaceError, match=r"^no space left on .*teacher.* for the teacher-feature cache "
                                           r"\(needs [\d.]+ MiB, [\d.]+ MiB free\)"):
        _teacher(tiny_model, tiny_root, tmp_path, disk)
    assert not (disk / "teacher" / "k").exists() and not list((disk / "teacher").iterdir())


def _final(run: Path) -> tuple[dict, list, dict]:
    return load_file(str(run / RunDir.MODEL)), RunDir(run).read_history(), \
        json.loads((run / RunDir.METRICS).read_text())["final"]


@pytest.mark.slow
def test_reusing_the_teacher_cache_gives_the_same_run(tiny_root, tmp_path):
    """Build vs reuse (and vs memory): identical weights, losses and metrics; a damaged cache is rebuilt."""
    cfg = tiny_config(tiny_root, tmp_path / "cache", iterations=3, cache_teacher_features="disk")
    train(cfg, tmp_path / "build", progress=False)
    train(cfg, tmp_path / "reuse", progress=False)
    train(cfg.with_overrides({"train.cache_teacher_features": "memory"}), tmp_path / "memory", progress=False)
    (key,) = (tmp_path / "cache" / "teacher").iterdir()
    corrupt(key / "scale0.npy", offset=1000)
    with pytest.warns(RecoveryWarning, match="teacher-feature cache"):
        train(cfg, tmp_path / "damaged", progress=False)
    w0, h0, m0 = _final(tmp_path / "build")
    for other in ("reuse", "memory", "damaged"):
        w, h, m = _final(tmp_path / other)
        assert all(torch.equal(w[k], w0[k]) for k in w0), other
        assert [(r["step"], r["loss"], r["lr"]) for r in h] == [(r["step"], r["loss"], r["lr"]) for r in h0]
        assert m == m0, other


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["off", "memory", "disk"])
def test_resume_is_bit_exact_with_every_teacher_cache_mode(mode, tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path / "cache", cache_teacher_features=mode)
    train(cfg, tmp_path / "straight", progress=False, max_steps=4)
    train(cfg, tmp_path / "resumed", progress=False, max_steps=2)
    train(cfg, tmp_path / "resumed", resume=True, progress=False, max_steps=4)
    a, b = load_file(str(tmp_path / "straight" / RunDir.MODEL)), load_file(str(tmp_path / "resumed" / RunDir.MODEL))
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [[r["loss"] for r in RunDir(tmp_path / n).read_history()] for n in ("straight", "resumed")]
    assert losses[0] == losses[1] and len(losses[0]) == 4


# -- permissions -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, file_mode", [(0o022, 0o644), (0o027, 0o640)])
def test_files_follow_the_umask(umask, file_mode, tiny_root, tmp_path):
    old = os.umask(umask)
    try:
        train(tiny_config(tiny_root, tmp_path / "cache", iterations=2, cache_teacher_features="disk"),
              tmp_path / "run", progress=False, max_steps=2)
    finally:
        os.umask(old)
    written = [p for p in [*(tmp_path / "run").rglob("*"), *(tmp_path / "cache").rglob("*")] if p.is_file()]
    assert len(written) > 10
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert set(modes.values()) == {oct(file_mode)}, modes
