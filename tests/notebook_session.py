"""Every numbered notebook executed once per test session, as a Colab user runs it; every notebook test reads it.

:class:`NotebookSession` executes a notebook the first time a test asks for it, as
``notebooks/build_notebooks.py`` renders it from ``notebooks/cells/NN_*.py`` (the committed ``.ipynb``
without outputs; ``tests/test_notebook_reproduce.py`` checks that they agree), copied alone into an empty
folder of the simulated Colab (``tests/colab_sim.py``: the wheel installed non-editable in a fresh
environment, ``google.colab`` present), through papermill, with its **default parameters**, except:

- ``run_dir``, for a notebook that declares it, is the run of the nearest earlier notebook whose
  ``results.json`` names a ``run_dir`` (02 gets 00's run, 04 gets 03's), passed by absolute path: the
  notebooks' own defaults find those runs only in a shared folder;
- :data:`SCHEDULES`: a smaller schedule where the default run's length adds nothing to what is checked.

Tests then read the executed notebook (outputs compared with the committed ones by
``tests/test_notebook_reproduce.py``), the ``results.json`` it wrote (``tests/test_notebooks.py``) and the
kernel log (``tests/test_colab.py``). A failed execution is recorded, not raised: each test of that notebook
fails with papermill's message.
"""
from __future__ import annotations

import ast
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from colab_sim import ROOT, FakeColab

# Notebook → parameters giving a smaller schedule. Only for notebooks whose checks do not depend on the
# schedule's length: 05's default sweep is smoke-sized already and no cell of it is checked against its
# committed output; 2 steps per run still train, evaluate and tabulate every default variant and seed.
SCHEDULES = {"05_ablations": {"iterations": 2}}


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


class NotebookSession:
    """Executes each notebook at most once (lazily, on first request) and keeps the results."""

    def __init__(self, colab: FakeColab, notebooks: list[Path]):
        """``notebooks``: the rendered ``NN_*.ipynb`` files (outputs empty)."""
        self.colab = colab
        self.notebooks = {p.stem: p for p in sorted(notebooks)}
        self.done: dict[str, Execution] = {}

    def __getitem__(self, name: str) -> Execution:
        if name not in self.done:
            self.done[name] = self._execute(name)
        return self.done[name]

    def source(self, name: str) -> nbformat.NotebookNode:
        """The notebook as executed (rendered, before execution)."""
        return nbformat.read(self.notebooks[name], as_version=4)

    def parameters(self, name: str) -> dict:
        """What the session injects into ``name``: its smaller schedule and the earlier notebook's run."""
        declared = default_parameters(self.source(name))
        params = {k: v for k, v in SCHEDULES.get(name, {}).items() if k in declared}
        if "run_dir" in declared and (run := self._earlier_run(name)) is not None:
            params["run_dir"] = str(run)
        return params

    def _earlier_run(self, name: str) -> Path | None:
        earlier = [n for n in self.notebooks if n < name]
        for other in reversed(earlier):
            run = self[other]
            results = run.folder / default_parameters(self.source(other)).get("output_dir", ".") / "results.json"
            if not run.error and results.is_file() and "run_dir" in (res := json.loads(results.read_text())):
                return run.path(res["run_dir"])
        return None

    def _execute(self, name: str) -> Execution:
        params = self.parameters(name)
        before = len(self.colab.log_entries())
        start = time.perf_counter()
        done = self.colab.execute(self.notebooks[name], f"defaults/{name}", **params)
        seconds = time.perf_counter() - start
        folder = self.colab.work / "defaults" / name
        output = folder / f"out_{name}.ipynb"
        notebook = nbformat.read(output, as_version=4) if output.is_file() else None
        error = "" if done.returncode == 0 else (done.stderr[-6000:] or f"exit status {done.returncode}")
        return Execution(name=name, folder=folder, parameters=params, notebook=notebook, error=error,
                         kernels=[e for e in self.colab.log_entries()[before:] if "kernel" in e], seconds=seconds)


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
