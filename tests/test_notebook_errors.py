"""A bad notebook parameter stops the notebook in its check cell with one short line that names it.

Papermill only logs a warning for a parameter the notebook does not define (``-p epoch 5``) and would run
with the defaults; every numbered notebook calls ``check_injected_parameters()`` right after its
parameters so the mistake is an error naming the valid parameters (closest match suggested).
"""
from __future__ import annotations

import ast

import nbformat
import notebook_checks as checks
import pytest

NOTEBOOKS = checks.committed_notebooks()


def _parameters_cell_index(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))


def _authored(path, tmp_dir):
    """The notebook as authored: rendered by ``notebooks/build_notebooks.py`` (generated cells included)
    when its ``notebooks/cells/NN_*.py`` source exists, else the committed file."""
    source = checks.NOTEBOOKS / "cells" / f"{path.stem}.py"
    if not source.is_file():
        return checks.read(path)
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", checks.NOTEBOOKS / "build_notebooks.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return nbformat.read(build.build(source, tmp_dir), as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_checks_its_injected_parameters_first(path, tmp_path):
    nb = _authored(path, tmp_path)
    start = _parameters_cell_index(nb)
    after = next(c for c in nb.cells[start + 1:] if c.cell_type == "code" and
                 "injected-parameters" not in c.metadata.get("tags", []))
    calls = [n.func.id for n in ast.walk(ast.parse(after.source))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert "check_injected_parameters" in calls, (
        f"{path.name}: the first code cell after the parameters must call check_injected_parameters()")
    if "experiment_from_params" in calls:  # before the parameters are used
        assert calls.index("check_injected_parameters") < calls.index("experiment_from_params")


BAD = {  # notebook → (a bad parameter, the message its check cell must stop with)
    "03_training": ({"epoch": 5}, "'epoch' is not a parameter of this notebook (did you mean 'epochs'?)"),
    "00_quickstart": ({"data_root": "no/such/folder"},
                      "parameter data_root='no/such/folder': no such folder; set data_root to an existing folder"),
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory) -> dict:
    """The bad-parameter executions, two at a time (``notebook_session.run_failing``)."""
    pytest.importorskip("papermill")
    from notebook_session import run_failing

    cases = {name: (checks.NOTEBOOKS / f"{name}.ipynb", params) for name, (params, _) in BAD.items()}
    return run_failing(cases, tmp_path_factory.mktemp("bad_parameters"))


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("name", BAD)
def test_bad_parameter_fails_in_the_check_cell_with_one_line(bad_runs, name):
    params, message = BAD[name]
    nb = checks.read(checks.NOTEBOOKS / f"{name}.ipynb")
    e = bad_runs[name]
    assert e is not None, f"{name} ran through with {params}"
    assert e["ename"] == "NotebookParameterError" and message in e["evalue"]
    assert e["traceback"] == [f"NotebookParameterError: {e['evalue']}"]  # no traceback, just the message
    assert message in "\n".join(e["message"].splitlines()[:4])  # papermill's error starts with it
    assert "--data-root" not in e["message"]
    # the cell that failed is the check right after the parameters and papermill's injected cell
    code_cells_before = sum(1 for c in nb.cells[:_parameters_cell_index(nb) + 1] if c.cell_type == "code")
    assert e["exec_count"] == code_cells_before + 2
    if "epoch" in params:
        assert "Its parameters: preset, epochs, iterations, batch_size" in e["evalue"]  # the lesson first


def _builder():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", checks.NOTEBOOKS / "build_notebooks.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_parameters_cell_shows_the_lesson_first_and_the_set_up_after_its_header(path, tmp_path):
    build = _builder()
    source = _authored(path, tmp_path).cells[_parameters_cell_index(_authored(path, tmp_path))].source
    names = [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets]
    setup = [n for n in names if n in build.SETUP_PARAMETERS]
    assert names and names[0] not in build.SETUP_PARAMETERS, names  # a lesson parameter opens the cell
    if setup:  # every set-up parameter sits after the header line, so the lesson's knobs come first
        header = source.splitlines().index(next(x for x in source.splitlines() if x.startswith(build.SETUP_HEADER)))
        first_setup = min(i for i, x in enumerate(source.splitlines()) if x.split("=")[0].strip() in setup)
        assert first_setup > header


@pytest.mark.parametrize("cell, message", [
    ('epochs = 3\ndevice = "cpu"\n', "set-up parameter 'device' sits among the lesson's parameters"),
    ('device = "cpu"\n# -- set-up: plumbing --\noutput_dir = "x"\n', "set-up parameter 'device'"),
])
def test_parameters_layout_check_catches_set_up_among_the_lesson(cell, message):
    with pytest.raises(ValueError, match=message):
        _builder().check_parameters_layout(cell, "planted.py")
    ok = 'epochs = 3\n# -- set-up: plumbing --\ndevice = "cpu"\nbatch_size = 16\n'
    _builder().check_parameters_layout(ok, "ok.py")  # below the header a notebook may add its own plumbing
