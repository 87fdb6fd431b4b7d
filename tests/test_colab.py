"""Colab, simulated (``tests/colab_sim.py``): each notebook alone in an empty folder, from the built wheel.

Every notebook's default run comes from the session's one execution (``tests/notebook_session.py``, shared
with the reproduction and results checks, running in the background meanwhile): here each must have run on
the wheel's copy of the kit, with the runtime cell describing the device. The Colab-only paths run here on
tiny schedules: 03 on a dataset archive on the fake Drive (``drive=True``), 04 given that run's Drive path as
a Colab user types it, and a runtime disconnect (killing the notebook's process group after its first
checkpoint, deleting its working folder, Colab's ``/content``, and the mount; only the Drive's content
survives) followed by a resume.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import notebook_checks as checks
import pytest
from colab_sim import NOTEBOOK_TIMEOUT_S, ROOT, FakeColab
from test_colab_helpers import load_builder

from omniad_lite.run import RunDir
from omniad_lite.training.state import has_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

POLL_S = 0.05
ITERATIONS = 20  # of the run interrupted after its first checkpoint (step 2) and resumed
DEMO_CLASSES = ["brick", "coffee"]  # the two classes in the fake dataset archive
NOTEBOOKS = checks.committed_notebooks()


def results(folder: Path, output_dir: str = "out") -> dict:
    """A notebook's results.json as one flat dict: its ``extra``, the metrics' ``mean``/``per_class``, the rest."""
    record = json.loads((folder / output_dir / "results.json").read_text())
    metrics = record["metrics"] or {}
    return {**record["extra"], **{k: v for k, v in record.items() if k != "extra"},
            "mean": metrics.get("mean"), "per_class": metrics.get("per_class")}


def mounts(colab_sim: FakeColab) -> int:
    return sum(e == {"mount": str(colab_sim.drive)} for e in colab_sim.log_entries())


def test_the_wheel_copy_is_imported(colab_sim):
    empty = colab_sim.work / "import"
    empty.mkdir(parents=True)
    code = ("import omniad_lite, omniad_lite.colab; print(omniad_lite.__file__); "
            "print(omniad_lite.colab.repository_url())")
    out = subprocess.run([str(colab_sim.python), "-c", code], env=colab_sim.env, cwd=empty, check=True,
                         capture_output=True, text=True).stdout.split()
    assert Path(out[0]).is_relative_to(colab_sim.site) and not Path(out[0]).is_relative_to(ROOT)
    assert out[1] == load_builder().repository_url()  # from the installed metadata: the pyproject URL


def used_the_wheel(entry: dict, colab: FakeColab) -> bool:
    """A kernel log entry (tests/colab_sim.py) written by the simulated Colab's interpreter using the wheel."""
    return (Path(entry["kernel"]).parent == colab.python.parent and bool(entry["omniad_lite"])
            and Path(entry["omniad_lite"]).is_relative_to(colab.site))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_notebook_runs_alone_from_the_wheel(notebook_session, colab_sim, path):
    """The session's default run: the notebook alone in an empty folder, its kernel on the wheel's kit, and the
    runtime cell telling the user which device it got (and, on a CPU, how to switch Colab to a GPU)."""
    import torch

    run = notebook_session[path.stem]
    run.check()
    assert run.kernels and all(used_the_wheel(e, colab_sim) for e in run.kernels), run.kernels
    runtime = next(c for c in run.notebook.cells if c.cell_type == "code" and "colab.runtime_report(" in c.source)
    shown = "".join(t for out in runtime.outputs for t in checks.output_texts(out))
    if torch.cuda.is_available():
        assert "runtime: GPU" in shown, shown
    else:
        assert "runtime: CPU only" in shown and "Change runtime type" in shown, shown


@dataclass
class DriveRun:
    """03 on the fake Drive, interrupted after its first checkpoint and run again (see ``drive_run``)."""

    colab: FakeColab    # the simulated Colab it ran in (its own HOME, the local disk that a disconnect wipes)
    drive_folder: Path  # drive_folder as the notebook got it (through the mount point)
    run: RunDir         # its run directory on Drive
    saved: int          # the step of the checkpoint the interrupted run left
    mounts: tuple[int, int]  # Drive mounts logged after the first run, after the second
    second: Path        # the second run's working folder
    results: dict       # the second run's results.json
    evaluated: subprocess.CompletedProcess  # 04 given the run's Drive path as a Colab user types it
    evaluated_in: Path  # that run's working folder


def drive_runs(session) -> DriveRun:
    """03 as the Colab checklist (docs/install.md) runs it: ``drive=True`` and the official-style archive on
    Drive (two demo classes, MVTec layout) extracted to local disk; one class trained. The runtime disconnects
    after the first checkpoint (the notebook's process group killed, its local folder, the extracted data and
    the mount gone); the notebook is run again with the same parameters. It has a HOME of its own (the local
    disk it wipes), as the session's notebooks may be running meanwhile. Then 04 evaluates that run, given its
    Drive path. Runs in the session's background pool (``BACKGROUND_JOBS``)."""
    from omniad_lite.data.demo import make_demo_dataset

    colab_sim, rendered = session.colab, session.notebooks

    home = colab_sim.work / "drive_run_home"
    home.mkdir(parents=True)
    colab = dataclasses.replace(colab_sim, env={**colab_sim.env, "HOME": str(home)})

    demo = make_demo_dataset(colab.work / "demo_source")
    with tarfile.open(colab.content / "mvtec_anomaly_detection.tar.gz", "w:gz") as tar:
        for cls in DEMO_CLASSES:
            tar.add(Path(demo) / cls, arcname=cls)
    drive_folder = colab.drive / "MyDrive" / "omniad_lite"
    params = dict(classes=DEMO_CLASSES[:1], epochs=None, iterations=ITERATIONS, overrides=["train.checkpoint_every=2"],
                  live_every_s=60.0, drive=True, drive_folder=str(drive_folder), output_dir="runs/resume",
                  data_archive=str(colab.drive / "MyDrive" / "mvtec_anomaly_detection.tar.gz"))
    run = RunDir(drive_folder / "runs" / "resume" / "run")
    first = colab.work / "resume_1"
    proc = subprocess.Popen(colab.command(rendered["03_training"], first, **params), env=colab.env, cwd=first,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + NOTEBOOK_TIMEOUT_S
        while not has_checkpoint(run) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(POLL_S)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runtime disconnects: kernel and all
        proc.wait(timeout=60)
    assert has_checkpoint(run) and not (run / RunDir.METRICS).exists(), "the run was not interrupted mid-way"
    import torch

    saved = torch.load(run.checkpoint_dir(run.checkpoint_steps()[-1]) / RunDir.STATE, weights_only=True)["step"]
    after_first = mounts(colab)
    # Colab's local disk is gone with the runtime: the working folder, HOME (the extracted data is in it), the mount
    for folder in (first, home):
        shutil.rmtree(folder)
    home.mkdir()
    (colab.drive / "MyDrive").unlink()

    second = colab.run(rendered["03_training"], "resume_2", **params)
    res = results(drive_folder / "runs", "resume")
    mounted = mounts(colab)
    run_dir = str(drive_folder / "runs" / "resume" / "run")  # as a Colab user types it
    evaluated = colab_sim.execute(rendered["04_evaluation"], "04", run_dir=run_dir, num_resamples=50, output_dir="out")
    return DriveRun(colab=colab, drive_folder=drive_folder, run=run, saved=saved, mounts=(after_first, mounted),
                    second=second, results=res, evaluated=evaluated, evaluated_in=colab_sim.work / "04")


BACKGROUND_JOBS = {"drive_run": drive_runs}  # started with the notebook session (tests/conftest.py)


@pytest.fixture(scope="module")
def drive_run(notebook_session) -> DriveRun:
    return notebook_session.job("drive_run", drive_runs).result()


def test_03_on_drive_resumes_after_a_disconnect(drive_run):
    assert 2 <= drive_run.saved < ITERATIONS
    assert drive_run.mounts[0] >= 1 and drive_run.mounts[1] == drive_run.mounts[0] + 1  # mounted again
    assert drive_run.results["steps"] == ITERATIONS
    executed = (drive_run.second / "out_03_training.ipynb").read_text()
    assert f"from its checkpoint at step {drive_run.saved} of {ITERATIONS}" in executed
    steps = [int(row["step"]) for row in drive_run.run.read_history()]
    assert steps == sorted(set(steps)) and steps[-1] == ITERATIONS
    kernels = drive_run.colab.kernels_in(drive_run.second)  # the resumed run's (the killed one records none)
    assert kernels and all(used_the_wheel(e, drive_run.colab) for e in kernels), kernels


def test_03_trains_on_the_archive_extracted_to_local_disk(drive_run):
    cfg = drive_run.results["config"]
    assert cfg["data"]["classes"] == DEMO_CLASSES[:1]
    data_root = Path(cfg["data"]["root"])  # HOME stands in for the local disk off Colab
    assert data_root.is_relative_to(Path(drive_run.colab.env["HOME"]))
    assert sorted(p.name for p in data_root.iterdir() if p.is_dir()) == DEMO_CLASSES  # extracted again


def test_04_evaluates_03s_run_by_path(drive_run):
    assert drive_run.evaluated.returncode == 0, f"04 failed:\n{drive_run.evaluated.stderr[-4000:]}"
    assert sorted(results(drive_run.evaluated_in)["per_class"]) == DEMO_CLASSES[:1]
    kernels = drive_run.colab.kernels_in(drive_run.evaluated_in)
    assert kernels and all(used_the_wheel(e, drive_run.colab) for e in kernels), kernels


def test_every_kernel_used_the_wheel(colab_sim, notebook_session):
    """After the session's executions (and whatever else ran in the simulated Colab before): each kernel
    recorded, at exit, which interpreter and which omniad_lite it used (a killed kernel records nothing)."""
    for name in notebook_session.notebooks:
        notebook_session[name]  # wait for the session's executions
    kernels = [e for e in colab_sim.log_entries() if "kernel" in e]
    assert len(kernels) >= len(NOTEBOOKS)
    assert all(used_the_wheel(e, colab_sim) for e in kernels), kernels
