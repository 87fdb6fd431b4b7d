"""Fixtures shared by the test files: tiny datasets in the real layouts, a tiny config and a tiny model.

Builders (plain functions, also importable by the tests) live in ``tests/helpers.py``; the fixtures here
build each thing once per session or per test as its scope says.
"""
from __future__ import annotations

import os
from pathlib import Path

# The notebooks execute in the background while the other tests run (tests/notebook_session.py): two
# processes' OpenMP threads share the cores. Idle OpenMP threads then sleep instead of spinning (the
# default spin steals the core a busy thread of the other process needs); results are unchanged.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from helpers import TINY_MODEL, build_meta, build_mvtec, build_realiad, build_visa, make_tiny_mvtec, tiny_config


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A 2-class MVTec-layout dataset (8 train, 2 test good, 2 defects with masks per class), 48² PNGs."""
    return make_tiny_mvtec(tmp_path_factory.mktemp("tiny_mvtec"))


@pytest.fixture
def tiny_cfg(tiny_root, tmp_path):
    """A factory: ``tiny_cfg(**train_overrides)`` → the tiny config on ``tiny_root`` with a fresh cache dir."""
    def make(**train_kw):
        return tiny_config(tiny_root, tmp_path / "cache", **train_kw)
    return make


@pytest.fixture(scope="session")
def tiny_model_config():
    """The tiny :class:`ModelConfig`: lite0 at random init, depths 1-1-1-1, 4 tokens, 64² input."""
    from omniad_lite.config import ModelConfig

    return ModelConfig(**TINY_MODEL)


@pytest.fixture
def tiny_model(tiny_model_config):
    """A freshly built tiny Omni-AD (seeded), eval mode."""
    import torch

    from omniad_lite.model import build_model

    torch.manual_seed(0)
    return build_model(tiny_model_config).eval()


@pytest.fixture
def dataset_root(tmp_path):
    """A factory: ``dataset_root("mvtec" | "visa" | "realiad" | "meta")`` → ``(root, expected counts)``."""
    builders = {"mvtec": build_mvtec, "visa": build_visa, "realiad": build_realiad, "meta": build_meta}

    def make(fmt: str):
        root = tmp_path / fmt
        return root, builders[fmt](root)
    return make


# -- the notebooks, executed once per session in the simulated Colab (tests/notebook_session.py) ------------
_SESSIONS = []


@pytest.fixture(scope="session")
def colab_sim(tmp_path_factory):
    """The simulated Colab (``tests/colab_sim.py``): the wheel in a fresh environment, fake ``google.colab``."""
    pytest.importorskip("papermill")
    from colab_sim import make_fake_colab

    return make_fake_colab(tmp_path_factory.mktemp("colab"))


@pytest.fixture(scope="session")
def notebook_session(colab_sim, tmp_path_factory):
    """Each notebook rendered from ``notebooks/cells`` and executed at most once per session, with its defaults,
    in a background thread (``tests/notebook_session.py``)."""
    from notebook_session import NotebookSession, render_notebooks

    session = NotebookSession(colab_sim, render_notebooks(tmp_path_factory.mktemp("rendered")))
    _SESSIONS.append(session)
    yield session
    session.close()


def _reads_the_notebook_session(item) -> bool:
    return "notebook_session" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session, config, items):
    """The tests that read the notebooks' executions run last (in their collected order), so that the
    executions, started with the first test (``_start_the_notebook_session``), overlap everything else."""
    items.sort(key=_reads_the_notebook_session)  # stable: each group keeps its order


@pytest.fixture(scope="session", autouse=True)
def _start_the_notebook_session(request):
    """Start, now and in the background, what the selected tests will read: the notebooks named in their ids
    (every notebook in a full run; ``-k 05_ablations`` only 05), and the ``BACKGROUND_JOBS`` of their modules
    (fixture name → ``fn(session)``: a module's own notebook runs) whose fixture a selected test uses. They are
    most of the suite's time; the other tests run meanwhile, and a notebook a test asks for later still runs
    then."""
    items = [item for item in request.session.items if _reads_the_notebook_session(item)]
    if not items:
        return
    session = request.getfixturevalue("notebook_session")
    session.start([name for name in session.notebooks if any(name in item.nodeid for item in items)])
    for module in dict.fromkeys(item.module for item in items):
        for fixture, fn in getattr(module, "BACKGROUND_JOBS", {}).items():
            if any(fixture in item.fixturenames for item in items):
                session.job(fixture, fn)


def pytest_terminal_summary(terminalreporter):
    """How long each shared notebook execution took (the notebook tests' cost is mostly these)."""
    for session in _SESSIONS:
        if session.done:
            terminalreporter.write_sep("-", "notebooks executed once with their defaults (simulated Colab)")
            for name, run in sorted(session.done.items()):
                status = "failed" if run.error else "ok"
                terminalreporter.write_line(f"{run.seconds:7.1f} s  {name}  {status}  {run.parameters or ''}")
