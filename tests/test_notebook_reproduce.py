"""The committed notebooks reproduce: every cell runs with the defaults, and each cell marked
``# NBVAL_CHECK_OUTPUT`` gives its committed output again.

nbval's contract (``pytest --nbval-lax``), checked on the session's one execution of each notebook
(``tests/notebook_session.py``: rendered from ``notebooks/cells/``, the wheel in the simulated Colab) with
nbval's own markers and stream handling: no second execution. The committed cells must be what
``notebooks/build_notebooks.py`` renders from ``notebooks/cells/``, so the notebook Colab opens from GitHub
is the one the tests execute.
"""
from __future__ import annotations

import nbformat
import notebook_checks as checks
import pytest
from test_colab_helpers import load_builder

NOTEBOOKS = checks.committed_notebooks()
IDS = [p.stem for p in NOTEBOOKS]


def _cells(nb) -> list[tuple]:
    return [(c.get("id"), c.cell_type, c.source, "parameters" in c.metadata.get("tags", [])) for c in nb.cells]


def test_every_cell_source_has_its_committed_notebook():
    sources = sorted(p.stem for p in (checks.NOTEBOOKS / "cells").glob("[0-9][0-9]_*.py"))
    assert sources == IDS, "render and execute the notebooks (make notebooks) and commit them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_rendered_from_its_cells(path, tmp_path):
    source = checks.NOTEBOOKS / "cells" / f"{path.stem}.py"
    assert source.is_file(), f"{path.name} has no source {source.name} in notebooks/cells/"
    rendered = _cells(nbformat.read(load_builder().build(source, tmp_path), as_version=4))
    committed = _cells(checks.read(path))
    differ = sorted({c[0] for c in set(rendered) ^ set(committed)}, key=str)
    assert committed == rendered, (
        f"{path.name} differs from notebooks/cells/{source.name} in cells {differ}: run `make notebooks` "
        f"(or `python notebooks/build_notebooks.py {path.stem[:2]}`, then execute it with papermill)")


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_checked_cells_reproduce_their_committed_output(path, notebook_session):
    run = notebook_session[path.stem]
    run.check()  # every cell ran (papermill stops at the first error)
    problems = checks.reproduction_problems(run.notebook, checks.read(path), path.stem)
    assert not problems, "\n".join(problems)


# -- the comparison itself, on planted notebooks -------------------------------------------------------------
def _notebook(source: str, *outputs, tags=()) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source, id="c1")
    cell.metadata["tags"] = list(tags)
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nb.cells = [cell]
    return nb


def _stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def _result(data: dict) -> dict:
    return {"output_type": "execute_result", "data": data, "metadata": {}, "execution_count": 3}


CHECKED = "# NBVAL_CHECK_OUTPUT\nprint(x)"


def test_a_changed_checked_output_is_reported():
    committed = _notebook(CHECKED, _stream("parameters: 1,234\n"))
    problems = checks.reproduction_problems(_notebook(CHECKED, _stream("parameters: 1,235\n")), committed, "nb")
    assert len(problems) == 1 and "nb cell c1: output differs" in problems[0] and "1,235" in problems[0]
    assert checks.reproduction_problems(committed, committed, "nb") == []


def test_unmarked_and_ignored_cells_are_not_compared():
    for source, tags in (("print(x)", ()), ("# NBVAL_IGNORE_OUTPUT\nprint(x)", ()), ("x", ("nbval-ignore-output",))):
        committed = _notebook(source, _stream("a\n"), tags=tags)
        assert checks.reproduction_problems(_notebook(source, _stream("b\n"), tags=tags), committed, "nb") == []
    tagged = _notebook("x", _stream("a\n"), tags=("nbval-check-output",))
    assert checks.reproduction_problems(_notebook("x", _stream("b\n")), tagged, "nb")  # the tag marks it too


def test_comparison_follows_nbval_streams_pictures_and_counters():
    png_a, png_b = {"image/png": "iVBORw0KGgoAAAA"}, {"image/png": "iVBORw0KGgoBBBB"}
    committed = _notebook(CHECKED, _stream("a\nb\n"), _result({"text/plain": "3", **png_a}))
    executed = _notebook(CHECKED, _stream("a\n"), _stream("\r10%\r100%\rb\n"),  # one stream, \r applied
                         {**_result({"text/plain": "3", **png_b}), "execution_count": 9})
    assert checks.reproduction_problems(executed, committed, "nb") == []
    stderr = _notebook(CHECKED, _stream("a\nb\n"), _stream("warning\n", "stderr"), _result({"text/plain": "3"}))
    assert checks.reproduction_problems(stderr, committed, "nb")  # a new stderr stream is a difference


def test_missing_or_edited_cells_and_unsupported_markers_are_reported():
    committed = _notebook(CHECKED, _stream("a\n"))
    other = _notebook(CHECKED, _stream("a\n"))
    other.cells[0]["id"] = "c2"
    assert "not in the executed notebook" in checks.reproduction_problems(other, committed, "nb")[0]
    edited = _notebook(CHECKED + "  # edited", _stream("a\n"))
    assert "source differs" in checks.reproduction_problems(edited, committed, "nb")[0]
    skipped = _notebook("# NBVAL_SKIP\nprint(x)")
    assert "not supported" in checks.reproduction_problems(skipped, skipped, "nb")[0]
    untagged = _notebook("# NBVAL_RAISES_EXCEPTION\nraise ValueError")
    assert "needs the cell tag raises-exception" in checks.reproduction_problems(untagged, untagged, "nb")[0]


def test_a_cell_tagged_raises_exception_must_raise():
    error = {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}
    raising = _notebook("raise ValueError('x')", error, tags=("raises-exception",))
    assert checks.reproduction_problems(raising, raising, "nb") == []
    quiet = _notebook("raise ValueError('x')", tags=("raises-exception",))
    assert "raised nothing" in checks.reproduction_problems(quiet, raising, "nb")[0]
