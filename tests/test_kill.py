"""``kill -9`` at random moments never leaves a run that neither resumes nor says what to do.

Training runs in child processes (``omniad-lite train``, forked from a forkserver that has imported torch
once, so a child starts in a fraction of a second) and is killed with SIGKILL after a random delay: while
the data and teacher caches are built, between optimiser steps, while a checkpoint is written, during the
final evaluation. After each kill the test acts as a user would: ``--resume``; if that answers that there
is no run to resume, the same command without it. Any other error fails the test. Every run is finally
let to finish and must equal, bit for bit, an uninterrupted run (weights, losses, metrics).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file

from omniad_lite.run import RunDir

MIN_KILLS = 12
KILLS_PER_RUN = 3
KILL_WINDOW = 0.6  # kill within the first KILL_WINDOW x an uninterrupted run's duration: several per run
SEED = 14  # the kill delays are random but reproducible


def _child(argv: list[str], log: str) -> None:
    """Run the CLI with stdout/stderr appended to ``log``; exit with its return code."""
    import sys

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from omniad_lite.cli import main

    rc = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


class Runner:
    """Starts ``omniad-lite train`` children from a forkserver that has imported the training stack."""

    def __init__(self, cfg_path: Path, log_dir: Path) -> None:
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(["torch", "timm", "omniad_lite.training", "omniad_lite.cli"])
        self.cfg_path, self.log_dir, self.n = cfg_path, log_dir, 0

    def start(self, out: Path, *flags: str):
        self.n += 1
        log = self.log_dir / f"{self.n:03d}.log"
        argv = ["train", "--config", str(self.cfg_path), "--out", str(out), *flags]
        proc = self.ctx.Process(target=_child, args=(argv, str(log)))
        proc.start()
        return proc, log

    def run(self, out: Path, *flags: str, kill_after: float | None = None) -> tuple[int | None, str]:
        """Run to the end, or SIGKILL after ``kill_after`` s; returns (exit code or None if killed, log)."""
        proc, log = self.start(out, *flags)
        proc.join(kill_after)
        killed = proc.is_alive()
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        text = log.read_text() if log.exists() else ""
        return (None if killed else proc.exitcode), text


def _user_step(runner: Runner, out: Path, kill_after: float | None) -> tuple[int | None, str]:
    """What a user does with an interrupted run: --resume; without it when told there is no run."""
    rc, log = runner.run(out, "--resume", kill_after=kill_after)
    if rc == 2 and "holds no run" in log and "without --resume" in log:
        rc, log = runner.run(out, kill_after=kill_after)
    if rc not in (None, 0):
        pytest.fail(f"a killed run could not be continued (exit {rc}):\n{log}")
    assert "Traceback" not in log, log
    return rc, log


def _result(run: Path) -> tuple[dict, list, dict]:
    history = [(r["step"], r["loss"], r["lr"]) for r in RunDir(run).read_history()]
    return load_file(str(run / RunDir.MODEL)), history, json.loads((run / RunDir.METRICS).read_text())["final"]


@pytest.mark.slow
def test_kill_9_at_random_moments_always_resumes_to_the_same_run(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path / "cache-ref", iterations=8, checkpoint_every=1,
                      cache_teacher_features="disk")
    cfg.save(tmp_path / "cfg.json")
    runner = Runner(tmp_path / "cfg.json", tmp_path)
    runner.ctx.Process(target=os.getpid).start()  # the forkserver imports torch once, before the timing
    t0 = time.perf_counter()
    rc, log = runner.run(tmp_path / "ref")
    assert rc == 0, log
    duration = time.perf_counter() - t0  # one uninterrupted run, caches built
    ref = _result(tmp_path / "ref")
    rng, kills, runs, attempts, where = random.Random(SEED), 0, 0, 0, []
    # stratified delays: one uniform draw in each of MIN_KILLS equal slices of the window, shuffled, so the
    # kills cover the window's start (cache builds) to its end (late steps, the evaluation) evenly
    delays = [(i + rng.random()) / MIN_KILLS * KILL_WINDOW * duration for i in range(MIN_KILLS)]
    rng.shuffle(delays)
    while kills < MIN_KILLS:
        runs += 1
        out = tmp_path / f"run{runs}"
        # each run builds its own image and teacher-feature caches, so kills land in cache builds too
        cfg.with_overrides({"data.cache_dir": str(tmp_path / f"cache{runs}")}).save(tmp_path / "cfg.json")
        rc = None
        for _ in range(KILLS_PER_RUN):
            rc, _ = _user_step(runner, out, kill_after=delays[attempts % MIN_KILLS])
            attempts += 1
            if rc == 0:
                break  # finished before the kill
            kills += 1
            where.append(RunDir(out).checkpoint_steps()[-1:] or ["none"])
            if kills == MIN_KILLS:
                break
        if rc is None:
            rc, log = _user_step(runner, out, kill_after=None)
        assert rc == 0
        weights, history, metrics = _result(out)
        assert weights.keys() == ref[0].keys() and all(torch.equal(weights[k], ref[0][k]) for k in weights)
        assert history == ref[1] and metrics == ref[2]
    print(f"{kills} kills over {runs} runs; newest checkpoint after each kill: {where}")
