"""Colab, simulated: the built wheel in a fresh environment, a fake ``google.colab``, one empty folder per run.

What stands in for what:

- Colab's preinstalled packages (torch, timm, pandas, papermill's stack, ...) = this interpreter's
  site-packages, seen by a fresh virtual environment through a ``.pth`` path line (``.pth`` files *inside*
  it, such as an editable install's finder, are not processed, so the source checkout stays invisible);
- ``pip install "omniad_lite[colab] @ git+URL"`` = the wheel built from this checkout (``pip wheel``),
  installed non-editable into that environment (every kernel records which ``omniad_lite`` it imported);
- Colab's kernel = ipykernel started by papermill from that environment, with ``google.colab`` imported at
  start-up (an IPython start-up file), as on Colab; ``google.colab.drive.mount`` is a stub that links
  ``<mount point>/MyDrive`` to a temporary folder standing in for the user's Drive, and logs the call;
- Colab's ``/content`` = an empty folder per notebook run, holding only the notebook.

Used by ``tests/notebook_session.py`` (every notebook once with its defaults) and ``tests/test_colab.py``
(the Drive archive, a disconnect and resume).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_TIMEOUT_S = 1800  # per notebook run; the slowest default run takes about a minute on an idle 2-core CPU
DRIVER = "import json, sys, papermill as pm; pm.execute_notebook(**json.loads(sys.argv[1]))"

STUB_DRIVE = '''"""Stand-in for google.colab.drive (tests/colab_sim.py): <mountpoint>/MyDrive → the fake Drive."""
import json
import os
from pathlib import Path


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    Path(mountpoint).mkdir(parents=True, exist_ok=True)
    Path(mountpoint, "MyDrive").symlink_to(os.environ["FAKE_DRIVE_CONTENT"], target_is_directory=True)
    with open(os.environ["FAKE_COLAB_LOG"], "a") as log:
        log.write(json.dumps({"mount": str(mountpoint)}) + "\\n")
'''
KERNEL_STARTUP = '''# Colab's kernel imports google.colab at start-up; record which omniad_lite each kernel
# used, and where it ran.
import atexit
import json
import os
import sys

import google.colab  # noqa: F401


def _record():
    module = sys.modules.get("omniad_lite")
    entry = {"kernel": sys.executable, "omniad_lite": getattr(module, "__file__", None), "cwd": _START_DIR}
    with open(os.environ["FAKE_COLAB_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\\n")


_START_DIR = os.getcwd()  # papermill starts the kernel in the notebook's folder
atexit.register(_record)
'''


@dataclass
class FakeColab:
    python: Path      # the fresh environment's interpreter
    site: Path        # its site-packages, where the wheel is installed
    env: dict         # the environment every notebook runs in
    work: Path        # one empty folder per notebook run is made in here
    drive: Path       # the fake Drive mount point (MyDrive appears in it once mounted)
    content: Path     # what the user's Drive holds (survives a disconnect)
    log: Path

    def log_entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def kernels_in(self, folder: Path) -> list[dict]:
        """The kernel log entries of the kernels started in ``folder`` (a notebook run's working folder)."""
        return [e for e in self.log_entries() if "kernel" in e and Path(e["cwd"]).resolve() == Path(folder).resolve()]

    def command(self, notebook: Path, folder: Path, **params) -> list[str]:
        """The papermill call running ``notebook`` copied alone into ``folder`` (created empty); the executed
        notebook is written to ``folder/out_<name>.ipynb``."""
        folder.mkdir(parents=True)
        copy = shutil.copy(notebook, folder)
        args = dict(input_path=str(copy), output_path=str(folder / f"out_{notebook.name}"), cwd=str(folder),
                    parameters=params, progress_bar=False)
        return [str(self.python), "-c", DRIVER, json.dumps(args)]

    def execute(self, notebook: Path, label: str, **params) -> subprocess.CompletedProcess:
        """Execute ``notebook`` alone in ``work/label`` (stdout and stderr captured, exit status not checked)."""
        folder = self.work / label
        return subprocess.run(self.command(notebook, folder, **params), env=self.env, cwd=folder,
                              capture_output=True, text=True, timeout=NOTEBOOK_TIMEOUT_S)

    def run(self, notebook: Path, label: str, **params) -> Path:
        """Execute ``notebook`` alone in ``work/label``; fail with papermill's message unless it ran through.
        Returns that folder."""
        done = self.execute(notebook, label, **params)
        assert done.returncode == 0, f"{notebook.stem} failed:\n{done.stderr[-4000:]}"
        return self.work / label


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


def make_fake_colab(tmp: Path) -> FakeColab:
    """The whole simulation under ``tmp``: wheel, environment, kernel start-up file, HOME, caches, Drive."""
    python, site = make_environment(tmp / "venv", build_wheel(tmp))
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(KERNEL_STARTUP)
    import matplotlib

    (tmp / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "OMNIAD_LITE_CACHE")}
    env.update(HOME=str(tmp / "home"), IPYTHONDIR=str(tmp / "ipython"), JUPYTER_DATA_DIR=str(tmp / "jupyter"),
               JUPYTER_PATH=str(tmp / "jupyter"), MPLCONFIGDIR=matplotlib.get_configdir(), HF_HUB_OFFLINE="1",
               OMNIAD_LITE_CACHE=str(tmp / "cache"), FAKE_COLAB_LOG=str(tmp / "colab.log"),
               FAKE_DRIVE_CONTENT=str(tmp / "drive_content"))
    (tmp / "colab.log").touch()
    (tmp / "drive_content").mkdir()
    return FakeColab(python=python, site=site, env=env, work=tmp / "work", drive=tmp / "drive",
                     content=tmp / "drive_content", log=tmp / "colab.log")
