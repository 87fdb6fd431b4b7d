"""Colab, simulated: every notebook runs from the built wheel, copied alone into an empty folder.

What stands in for what:

- Colab's preinstalled packages (torch, timm, pandas, papermill's stack, ...) = this interpreter's
  site-packages, seen by a fresh virtual environment through a ``.pth`` path line (``.pth`` files *inside*
  it, such as an editable install's finder, are not processed, so the source checkout stays invisible);
- ``pip install "omniad_lite[colab] @ git+URL"`` = the wheel built from this checkout (``pip wheel``),
  installed non-editable into that environment (the tests assert that every kernel imported that copy);
- Colab's kernel = ipykernel started by papermill from that environment, with ``google.colab`` imported at
  start-up (an IPython start-up file), as on Colab; ``google.colab.drive.mount`` is a stub that links
  ``<mount point>/MyDrive`` to a temporary folder standing in for the user's Drive, and logs the call;
- a runtime disconnect = killing the notebook's process group after its first checkpoint, deleting its
  working folder (Colab's ``/content``) and the mount; only the Drive's content survives.

The notebooks are rendered afresh from ``notebooks/cells`` (what ``build_notebooks.py`` writes and Colab
opens from GitHub) and chained only through run-directory paths: 00 → 02, 03 → 04; 05 and 06 run alone.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version
from test_colab_helpers import load_builder

from omniad_lite.run import RunDir
from omniad_lite.training.state import has_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_TIMEOUT_S = 1800  # per notebook; a few tens of seconds on an idle 2-core CPU
POLL_S = 0.05
ITERATIONS = 20  # of the run interrupted after its first checkpoint (step 2) and resumed
DEMO_CLASSES = ["brick", "coffee"]  # the two classes in the fake dataset archive
DRIVER = "import json, sys, papermill as pm; pm.execute_notebook(**json.loads(sys.argv[1]))"

STUB_DRIVE = '''"""Stand-in for google.colab.drive (tests/test_colab.py): <mountpoint>/MyDrive → the fake Drive."""
import json
import os
from pathlib import Path


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    Path(mountpoint).mkdir(parents=True, exist_ok=True)
    Path(mountpoint, "MyDrive").symlink_to(os.environ["FAKE_DRIVE_CONTENT"], target_is_directory=True)
    with open(os.environ["FAKE_COLAB_LOG"], "a") as log:
        log.write(json.dumps({"mount": str(mountpoint)}) + "\\n")
'''
KERNEL_STARTUP = '''# Colab's kernel imports google.colab at start-up; record which omniad_lite each kernel used.
import atexit
import json
import os
import sys

import google.colab  # noqa: F401


def _record():
    module = sys.modules.get("omniad_lite")
    with open(os.environ["FAKE_COLAB_LOG"], "a") as log:
        log.write(json.dumps({"kernel": sys.executable, "omniad_lite": getattr(module, "__file__", None)}) + "\\n")


atexit.register(_record)
'''


@dataclass
class FakeColab:
    python: Path      # the fresh environment's interpreter
    site: Path        # its site-packages, where the wheel is installed
    env: dict         # the environment every notebook runs in
    notebooks: Path   # the rendered notebooks
    work: Path        # one empty folder per notebook run is made in here
    drive: Path       # the fake Drive mount point (MyDrive appears in it once mounted)
    content: Path     # what the user's Drive holds (survives a disconnect)
    log: Path

    def log_entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def command(self, name: str, folder: Path, **params) -> list[str]:
        """The papermill call running ``name`` copied alone into ``folder`` (created empty)."""
        folder.mkdir(parents=True)
        notebook = shutil.copy(self.notebooks / f"{name}.ipynb", folder)
        args = dict(input_path=str(notebook), output_path=str(folder / f"out_{name}.ipynb"), cwd=str(folder),
                    parameters=params, progress_bar=False)
        return [str(self.python), "-c", DRIVER, json.dumps(args)]

    def run(self, name: str, label: str, **params) -> Path:
        """Execute a notebook alone in ``work/label``; return that folder."""
        folder = self.work / label
        done = subprocess.run(self.command(name, folder, **params), env=self.env, cwd=folder, capture_output=True,
                              text=True, timeout=NOTEBOOK_TIMEOUT_S)
        assert done.returncode == 0, f"{name} failed:\n{done.stderr[-4000:]}"
        return folder


def build_wheel(tmp: Path) -> Path:
    """``pip wheel`` of a copy of this checkout (the source tree stays untouched)."""
    src = tmp / "src"
    shutil.copytree(ROOT / "omniad_lite", src / "omniad_lite", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w",
           str(tmp / "dist"), str(src)]
    if Version(version("setuptools")) >= Version("77"):  # the build backend pyproject.toml asks for is here
        cmd[4:4] = ["--no-build-isolation", "--no-index"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return next((tmp / "dist").glob("omniad_lite-*.whl"))


def make_environment(venv: Path, wheel: Path) -> tuple[Path, Path]:
    """A fresh environment seeing this interpreter's packages, with the wheel installed; (python, site)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    runtime = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_colab_runtime.pth").write_text("\n".join(sorted(runtime)) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                    "--disable-pip-version-check", str(wheel)], check=True, capture_output=True, timeout=600,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    (site / "google" / "colab").mkdir(parents=True)  # no google/__init__.py: a namespace, as protobuf's
    (site / "google" / "colab" / "__init__.py").write_text('"""Stand-in for google.colab."""\nfrom . import drive\n')
    (site / "google" / "colab" / "drive.py").write_text(STUB_DRIVE)
    return python, site


@pytest.fixture(scope="module")
def fake_colab(tmp_path_factory) -> FakeColab:
    tmp = tmp_path_factory.mktemp("colab")
    python, site = make_environment(tmp / "venv", build_wheel(tmp))
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(KERNEL_STARTUP)
    rendered = tmp / "rendered"
    rendered.mkdir()
    builder = load_builder()
    for source in sorted((ROOT / "notebooks" / "cells").glob("[0-9][0-9]_*.py")):
        builder.build(source, rendered)
    import matplotlib

    (tmp / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "OMNIAD_LITE_CACHE")}
    env.update(HOME=str(tmp / "home"), IPYTHONDIR=str(tmp / "ipython"), JUPYTER_DATA_DIR=str(tmp / "jupyter"),
               JUPYTER_PATH=str(tmp / "jupyter"), MPLCONFIGDIR=matplotlib.get_configdir(), HF_HUB_OFFLINE="1",
               OMNIAD_LITE_CACHE=str(tmp / "cache"), FAKE_COLAB_LOG=str(tmp / "colab.log"),
               FAKE_DRIVE_CONTENT=str(tmp / "drive_content"))
    (tmp / "colab.log").touch()
    (tmp / "drive_content").mkdir()
    return FakeColab(python=python, site=site, env=env, notebooks=rendered, work=tmp / "work",
                     drive=tmp / "drive", content=tmp / "drive_content", log=tmp / "colab.log")


def results(folder: Path, output_dir: str = "out") -> dict:
    """A notebook's results.json as one flat dict: its ``extra``, the metrics' ``mean``/``per_class``, the rest."""
    record = json.loads((folder / output_dir / "results.json").read_text())
    metrics = record["metrics"] or {}
    return {**record["extra"], **{k: v for k, v in record.items() if k != "extra"},
            "mean": metrics.get("mean"), "per_class": metrics.get("per_class")}


def mounts(fake_colab: FakeColab) -> int:
    return sum(e == {"mount": str(fake_colab.drive)} for e in fake_colab.log_entries())


def test_the_wheel_copy_is_imported(fake_colab):
    empty = fake_colab.work / "import"
    empty.mkdir(parents=True)
    code = ("import omniad_lite, omniad_lite.colab; print(omniad_lite.__file__); "
            "print(omniad_lite.colab.repository_url())")
    out = subprocess.run([str(fake_colab.python), "-c", code], env=fake_colab.env, cwd=empty, check=True,
                         capture_output=True, text=True).stdout.split()
    assert Path(out[0]).is_relative_to(fake_colab.site) and not Path(out[0]).is_relative_to(ROOT)
    assert out[1] == load_builder().repository_url()  # from the installed metadata: the pyproject URL


@pytest.fixture(scope="module")
def quickstart(fake_colab) -> Path:
    return fake_colab.run("00_quickstart", "00", iterations=3, output_dir="out")


@pytest.fixture(scope="module")
def training(fake_colab) -> Path:
    """03 as the Colab checklist (docs/install.md) runs it: drive=True, the official-style archive on Drive (two demo
    classes, MVTec layout) extracted to local disk; returns the output folder on Drive."""
    from omniad_lite.data.demo import make_demo_dataset

    demo = make_demo_dataset(fake_colab.work / "demo_source")
    with tarfile.open(fake_colab.content / "mvtec_anomaly_detection.tar.gz", "w:gz") as tar:
        for cls in DEMO_CLASSES:
            tar.add(Path(demo) / cls, arcname=cls)
    drive_folder = fake_colab.drive / "MyDrive" / "omniad_lite"
    fake_colab.run("03_training", "03", drive=True, drive_folder=str(drive_folder), epochs=None, iterations=3,
                   data_archive=str(fake_colab.drive / "MyDrive" / "mvtec_anomaly_detection.tar.gz"),
                   live_every_s=60.0, output_dir="runs/03")
    assert mounts(fake_colab) == 1
    return fake_colab.content / "omniad_lite" / "runs" / "03"


def test_00_quickstart(quickstart):
    res = results(quickstart)
    assert res["steps"] == 3 and len(res["per_class"]) == 5
    executed = (quickstart / "out_00_quickstart.ipynb").read_text()
    assert "runtime: CPU only" in executed and "Change runtime type" in executed


def test_01_and_02_alone(fake_colab, quickstart):
    assert results(fake_colab.run("01_data_and_features", "01", num_examples=3, output_dir="out"))["teacher"]
    run_dir = str((quickstart / "out" / "run").resolve())
    res = results(fake_colab.run("02_omni_block", "02", run_dir=run_dir, dim=32, side=8, output_dir="out"))
    assert res["trained_run"] == run_dir


def test_03_trains_on_the_archive_extracted_to_local_disk(fake_colab, training):
    res = results(training, ".")
    assert res["steps"] == 3 and sorted(res["config"]["data"]["classes"] or DEMO_CLASSES) == DEMO_CLASSES
    data_root = Path(res["config"]["data"]["root"])  # HOME stands in for the local disk off Colab
    assert data_root.is_relative_to(Path(fake_colab.env["HOME"])) and sorted(p.name for p in data_root.iterdir()
                                                                             if p.is_dir()) == DEMO_CLASSES


def test_04_evaluates_03s_run_by_path(fake_colab, training):
    run_dir = str(fake_colab.drive / "MyDrive" / "omniad_lite" / "runs" / "03" / "run")  # as a Colab user types it
    res = results(fake_colab.run("04_evaluation", "04", run_dir=run_dir, num_resamples=50, output_dir="out"))
    assert sorted(res["per_class"]) == DEMO_CLASSES


def test_05_runs_alone(fake_colab):
    """05 calls the library (no other notebook needed): a two-variant, one-seed sweep plus the kNN baseline."""
    variants = {"base": [], "resampled": ["model.ffn=resampled"], "kNN": ["method=knn"]}
    folder = fake_colab.run("05_ablations", "05", iterations=2, classes=["brick"], variants=variants, seeds=[0],
                            output_dir="out")
    runs = {r["variant"]: r for r in results(folder)["runs"]}
    assert sorted(runs) == sorted(variants)
    assert runs["base"]["steps"] == runs["resampled"]["steps"] == 2 and runs["kNN"]["steps"] == 0


def test_06_runs_alone_with_its_onnx_export(fake_colab):
    """06 from the wheel alone: a folder without masks → run → threshold → ONNX (the colab extra has onnx)."""
    res = results(fake_colab.run("06_your_own_images", "06", iterations=3, gallery_size=2, fpr=0.1,
                                 output_dir="out"))
    assert res["steps"] == 3 and res["format"] == "folder" and res["onnx_same_decisions"]


def test_03_on_drive_resumes_after_a_disconnect(fake_colab):
    drive_folder = fake_colab.drive / "MyDrive" / "omniad_lite"
    params = dict(classes=["brick"], epochs=None, iterations=ITERATIONS, overrides=["train.checkpoint_every=2"],
                  live_every_s=60.0, drive=True, drive_folder=str(drive_folder), output_dir="runs/resume")
    run = RunDir(drive_folder / "runs" / "resume" / "run")
    first = fake_colab.work / "resume_1"
    proc = subprocess.Popen(fake_colab.command("03_training", first, **params), env=fake_colab.env, cwd=first,
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
    assert 2 <= saved < ITERATIONS
    shutil.rmtree(first)  # Colab's local disk is gone with the runtime, and with it the mount
    (fake_colab.drive / "MyDrive").unlink()
    mounted = mounts(fake_colab)

    second = fake_colab.run("03_training", "resume_2", **params)
    res = results(drive_folder / "runs", "resume")
    assert res["steps"] == ITERATIONS and mounts(fake_colab) == mounted + 1
    executed = (second / "out_03_training.ipynb").read_text()
    assert f"from its checkpoint at step {saved} of {ITERATIONS}" in executed
    steps = [int(row["step"]) for row in run.read_history()]
    assert steps == sorted(set(steps)) and steps[-1] == ITERATIONS


def test_every_kernel_used_the_wheel(fake_colab):
    """Runs last: each kernel recorded, at exit, which interpreter and which omniad_lite it used."""
    kernels = [e for e in fake_colab.log_entries() if "kernel" in e]
    assert len(kernels) >= 8  # 00, 01, 02, 03, 04, 05, 06, resume
    for entry in kernels:
        assert Path(entry["kernel"]).parent == fake_colab.python.parent, entry
        assert entry["omniad_lite"] and Path(entry["omniad_lite"]).is_relative_to(fake_colab.site), entry
