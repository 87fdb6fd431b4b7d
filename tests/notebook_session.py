"""Every numbered notebook executed once per test session, as a Colab user runs it; every notebook test reads it.

:class:`NotebookSession` executes each notebook as ``notebooks/build_notebooks.py`` renders it from
``notebooks/cells/NN_*.py`` (the committed ``.ipynb`` without outputs; ``tests/test_notebook_reproduce.py``
checks that they agree), copied alone into an empty folder of the simulated Colab (``tests/colab_sim.py``:
the wheel installed non-editable in a fresh environment, ``google.colab`` present), through papermill, with
its **default parameters**, except:

- ``run_dir``, for a notebook that declares it: the run of the notebook named in :data:`RUN_SOURCES`, by
  absolute path (the notebooks' own defaults find the default runs of 00 and 03 only in a shared folder);
- :data:`SCHEDULES`: a smaller schedule where the default run's length adds nothing to what is checked.

The executions run in background threads (:data:`SESSION_WORKERS` at a time), started with the test
session (``tests/conftest.py`` starts them and runs the tests that read them last), so they overlap the
other tests. Tests then read the executed notebook (outputs compared with the committed ones by
``tests/test_notebook_reproduce.py``), the ``results.json`` it wrote (``tests/test_notebooks.py``) and the
kernel log (``tests/test_colab.py``). A failed execution is recorded, not raised: each test of that notebook
fails with papermill's message.
"""
from __future__ import annotations

import ast
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from colab_sim import ROOT, FakeColab

# Notebook → parameters giving a smaller schedule. Only for notebooks whose checks do not depend on the
# schedule's length:
# - 03 trains the demo preset's default run, the same configuration and seed as 00 (which trains it in full
#   and checks its quality). Its checked cells (the hand-written step, the logged schedule, snapshots equal
#   to the final evaluation, step 0 at chance and +30 points later, the run directory's files) hold from 100
#   steps on: two snapshots (steps 50, 100) and the learning-rate drop (step 80) are still in the run.
# - 05's default sweep is smoke-sized already and no cell of it is checked against its committed output;
#   2 steps per run still train, evaluate and tabulate every default variant and seed.
SCHEDULES = {"03_training": {"iterations": 100}, "05_ablations": {"iterations": 2}}

# Notebook → the notebook whose run it gets as ``run_dir``. 04's checked cells need a demo-quality run
# (mean image AUROC ≥ 95): 00's, which is 03's default run trained once (the same configuration and seed).
RUN_SOURCES = {"01_data_and_features": "00_quickstart", "02_omni_block": "00_quickstart",
               "04_evaluation": "00_quickstart"}


def render_notebooks(out_dir: Path) -> list[Path]:
    """Every ``notebooks/cells/NN_*.py`` rendered by ``notebooks/build_notebooks.py`` into ``out_dir``."""
    from test_colab_helpers import load_builder

    builder = load_builder()
    return [builder.build(source, out_dir) for source in sorted((ROOT / "notebooks" / "cells").glob("[0-9][0-9]_*.py"))]


def parameters_cell(nb) -> nbformat.NotebookNode:
    """The cell tagged ``parameters`` (papermill's)."""
    return next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def default_parameters(nb) -> dict:
    """The parameters cell's assignments whose values are literals (``name = value``), as Python values."""
    values = {}
    for node in ast.parse(parameters_cell(nb).source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            values.update({t.id: value for t in targets if isinstance(t, ast.Name)})
    return values


@dataclass
class Execution:
    """One notebook executed in the simulated Colab."""

    name: str
    folder: Path                 # the run's working folder (the notebook alone in it at start)
    parameters: dict             # what was injected (everything else: the defaults)
    notebook: nbformat.NotebookNode | None  # the executed notebook (up to the failing cell on an error)
    error: str                   # papermill's message; "" when every cell ran
    kernels: list[dict] = field(default_factory=list)  # kernel log entries written during the run
    seconds: float = 0.0

    def results(self) -> dict:
        """The ``results.json`` the notebook wrote into its default ``output_dir``; fails the test on an error."""
        self.check()
        output_dir = default_parameters(self.notebook).get("output_dir", ".")
        return json.loads((self.folder / output_dir / "results.json").read_text())

    def path(self, value: str) -> Path:
        """A path the notebook printed or stored, relative to its working folder unless absolute."""
        return (self.folder / value).resolve()

    def check(self) -> None:
        if self.error:
            pytest.fail(f"{self.name} failed when executed with its defaults in {self.folder}:\n{self.error}",
                        pytrace=False)


SESSION_WORKERS = 2  # executions at a time: each has long single-threaded stretches (kernel, imports, plots)


class NotebookSession:
    """Executes each notebook at most once, in background threads, and keeps the results.

    ``session[name]`` waits for ``name``'s execution, submitting it (after the notebook whose run it gets)
    when :meth:`start` has not already. A notebook is always submitted after its run source, so a worker
    never waits for an execution that is still queued.
    """

    def __init__(self, colab: FakeColab, notebooks: list[Path]):
        """``notebooks``: the rendered ``NN_*.ipynb`` files (outputs empty)."""
        self.colab = colab
        self.notebooks = {p.stem: p for p in sorted(notebooks)}
        self.done: dict[str, Execution] = {}
        self._futures: dict[str, Future] = {}
        self._jobs: dict[str, Future] = {}
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(SESSION_WORKERS, thread_name_prefix="notebook-session")

    def __getitem__(self, name: str) -> Execution:
        return self._submit(name).result()

    def job(self, name: str, fn: Callable[[NotebookSession], Any]) -> Future:
        """Run ``fn(self)`` once in the background pool (after what is already queued); its future. For the
        test modules' own notebook runs (their ``BACKGROUND_JOBS``, started with the session)."""
        with self._lock:
            if name not in self._jobs:
                self._jobs[name] = self._pool.submit(fn, self)
            return self._jobs[name]

    def start(self, names: list[str]) -> None:
        """Submit these notebooks now: those that need no other's run first (00, the longest, leads), then the
        ones that evaluate 00's run."""
        for name in sorted(names, key=lambda n: (n in RUN_SOURCES, n)):
            self._submit(name)

    def close(self) -> None:
        """Cancel what has not started; wait for a running execution to end."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, name: str) -> Future:
        with self._lock:
            if name not in self._futures:
                if (source := RUN_SOURCES.get(name)) in self.notebooks:
                    self._submit(source)  # first in the queue, so a worker never waits on a queued execution
                self._futures[name] = self._pool.submit(self._execute, name)
            return self._futures[name]

    def source(self, name: str) -> nbformat.NotebookNode:
        """The notebook as executed (rendered, before execution)."""
        return nbformat.read(self.notebooks[name], as_version=4)

    def parameters(self, name: str) -> dict:
        """What the session injects into ``name``: its smaller schedule and its run source's run."""
        declared = default_parameters(self.source(name))
        params = {k: v for k, v in SCHEDULES.get(name, {}).items() if k in declared}
        if "run_dir" in declared and (run := self._source_run(name)) is not None:
            params["run_dir"] = str(run)
        return params

    def _source_run(self, name: str) -> Path | None:
        """The run directory that ``name``'s run source wrote (``None`` when it failed or names none)."""
        if (source := RUN_SOURCES.get(name)) not in self.notebooks:
            return None
        execution = self[source]
        results = execution.folder / default_parameters(self.source(source)).get("output_dir", ".") / "results.json"
        if execution.error or not results.is_file() or "run_dir" not in (res := json.loads(results.read_text())):
            return None
        return execution.path(res["run_dir"])

    def _execute(self, name: str) -> Execution:
        params = self.parameters(name)
        start = time.perf_counter()
        done = self.colab.execute(self.notebooks[name], f"defaults/{name}", **params)
        seconds = time.perf_counter() - start
        folder = self.colab.work / "defaults" / name
        output = folder / f"out_{name}.ipynb"
        notebook = nbformat.read(output, as_version=4) if output.is_file() else None
        error = "" if done.returncode == 0 else (done.stderr[-6000:] or f"exit status {done.returncode}")
        execution = Execution(name=name, folder=folder, parameters=params, notebook=notebook, error=error,
                              kernels=self.colab.kernels_in(folder), seconds=seconds)
        self.done[name] = execution
        return execution


# -- bad parameters: short executions that must fail in the first cells ---------------------------------------
FAILING_DRIVER = """import json, sys, papermill as pm
try:
    pm.execute_notebook(**json.loads(sys.argv[1]))
    print(json.dumps(None))
except pm.PapermillExecutionError as e:
    print(json.dumps({"ename": e.ename, "evalue": e.evalue, "traceback": e.traceback, "exec_count": e.exec_count,
                      "message": str(e)}))
"""
WORKERS = 2  # executions at a time: each is mostly single-threaded start-up (kernel, imports)


def run_failing(cases: dict[str, tuple[Path, dict]], tmp: Path) -> dict[str, dict | None]:
    """Execute each ``id → (notebook, parameters)`` with papermill in this interpreter (the checkout's kit),
    in ``tmp/id``, :data:`WORKERS` at a time. Returns ``id →`` the ``PapermillExecutionError``'s fields
    (``ename``, ``evalue``, ``traceback``, ``exec_count``, ``message``), or ``None`` when every cell ran."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def execute(item):
        key, (notebook, params) = item
        folder = tmp / key
        folder.mkdir(parents=True)
        args = dict(input_path=str(notebook), output_path=str(folder / "out.ipynb"), cwd=str(folder),
                    progress_bar=False, parameters={"output_dir": str(folder / "out"), **params})
        done = subprocess.run([sys.executable, "-c", FAILING_DRIVER, json.dumps(args)], capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{notebook.name} {params}: {done.stderr[-3000:]}"
        return key, json.loads(done.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(execute, cases.items()))
