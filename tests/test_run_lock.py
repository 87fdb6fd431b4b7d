"""The run-directory lock: a second writer (another process) is refused with one line, a dead one's lock is
taken over, and nothing of the holder's run is touched."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import tiny_config

from omniad_lite import lock as lock_mod
from omniad_lite.cli import main
from omniad_lite.errors import RecoveryWarning
from omniad_lite.lock import RunInUseError, RunLock
from omniad_lite.run import RunDir
from omniad_lite.training import train

HOLDER = textwrap.dedent("""
    import sys, time
    from omniad_lite.lock import RunLock
    RunLock(sys.argv[1], purpose="train").acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def held(tmp_path):
    """A second process holding the lock of ``tmp_path / "run"``: yields (run path, its PID)."""
    run = tmp_path / "run"
    paths = [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield run, proc.pid
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    """The PID of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_writer_is_refused_naming_the_holder(held, tiny_root, tmp_path, capsys):
    run, pid = held
    (run / RunDir.CONFIG).write_text("{}")  # the holder's run so far
    cfg = tiny_config(tiny_root, tmp_path / "cache")
    for kwargs in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(RunInUseError, match=rf"in use by train PID {pid} on host {socket.gethostname()}"
                                                 rf".*--overwrite.*another --out"):
            train(cfg, run, progress=False, max_steps=1, **kwargs)
    assert (run / RunDir.CONFIG).read_text() == "{}"  # --overwrite deleted nothing of the live run
    assert sorted(p.name for p in run.iterdir()) == [RunDir.LOCK, RunDir.CONFIG]
    # the CLI: one line, exit code 2
    cfg.save(tmp_path / "cfg.json")
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(run), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"PID {pid}" in err[0]


def test_eval_is_refused_while_a_run_is_written(held):
    run, pid = held
    with pytest.raises(RunInUseError, match=f"PID {pid}.*wait for it to finish"):
        RunDir(run).lock("eval", fix="wait for it to finish, then evaluate again")


def test_lock_of_a_dead_process_is_taken_over(tiny_root, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pid = dead_pid()
    (run / RunDir.LOCK).write_text(f'{{"pid": {pid}, "host": "{socket.gethostname()}", "purpose": "train", '
                                   f'"since": 0}}\n')
    with pytest.warns(RecoveryWarning, match=f"took over the lock of train PID {pid}"):
        result = train(tiny_config(tiny_root, tmp_path / "cache"), run, progress=False, max_steps=1)
    assert result.steps == 1
    assert not (run / RunDir.LOCK).exists()  # released at the end


def test_lock_is_exclusive_within_a_process_and_released(tmp_path):
    folder = tmp_path / "new"
    first = RunLock(folder).acquire()
    with pytest.raises(RunInUseError, match=f"PID {os.getpid()}"):
        RunLock(folder).acquire()
    first.release()
    assert not folder.exists()  # created by the lock, still empty: removed again
    with RunLock(tmp_path) as second:
        assert second.fd is not None
    assert tmp_path.is_dir() and not (tmp_path / RunDir.LOCK).exists()


def test_without_flock_the_recorded_pid_decides(tmp_path, monkeypatch):
    """Filesystems without flock: a live PID on this host holds the lock, a dead one does not."""
    monkeypatch.setattr(lock_mod, "_flock", lambda fd: None)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / RunDir.LOCK).write_text(f'{{"pid": {live.pid}, "host": "{lock_mod.HOST}", "since": 0}}')
        with pytest.raises(RunInUseError, match=rf"PID {live.pid}.*if that process is gone, delete"):
            RunLock(tmp_path).acquire()
    finally:
        live.kill()
        live.wait()
    (tmp_path / RunDir.LOCK).write_text(f'{{"pid": {dead_pid()}, "host": "{lock_mod.HOST}", "since": 0}}')
    taken = RunLock(tmp_path).acquire()
    assert taken.taken_over is not None
    taken.release()
