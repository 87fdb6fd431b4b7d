"""The committed notebooks read well everywhere: clean outputs, and nothing blank in a static render.

Runs on whatever outputs the committed ``notebooks/NN_*.ipynb`` hold (``make notebooks`` re-executes them
with their defaults): no stderr, no stored errors, no output over 40 lines or 100 characters wide, no
absolute or temp paths, no config dumps; every figure has its picture, every widget a static PNG, and
nbconvert's HTML shows every picture. Each check is also run on a planted bad notebook, so it can fail.
"""
from __future__ import annotations

import base64
import io

import matplotlib.pyplot as plt
import nbformat
import notebook_checks as checks
import pytest

NOTEBOOKS = checks.committed_notebooks()
IDS = [p.stem for p in NOTEBOOKS]


def _png(blank: bool = False) -> str:
    fig, ax = plt.subplots(figsize=(1, 1))
    if not blank:
        ax.plot([0, 1], [0, 1])
    else:
        ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _notebook(*outputs) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1", id="c1")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nb.cells = [cell]
    return nb


def _stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def _display(data: dict) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def test_there_are_notebooks_to_check():
    assert len(NOTEBOOKS) >= 5, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_outputs_are_clean(path):
    problems = checks.clean_output_problems(checks.read(path), path.stem)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_outputs_render_statically(path):
    problems = checks.static_output_problems(checks.read(path), path.stem)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebooks_html_shows_every_picture(path):
    problems = checks.html_problems(checks.read(path), path.stem)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("output, message", [
    (_stream("WARNING | Kernel is running over TCP\n", "stderr"), "writes to stderr"),
    (_stream("".join(f"line {i}\n" for i in range(41))), "41 output lines"),
    (_stream("wrote /tmp/pytest-of-root/x/results.json\n"), "absolute or temp path"),
    (_stream("cache in /root/.cache/omniad_lite/.demo_v3_seed0.tmp18554\n"), "absolute or temp path"),
    (_stream("x" * 101 + "\n"), "a line of 101 characters"),
    (_stream("{\n" + "".join(f'  "{k}": 1,\n' for k in ["encoder", "decoder_depths", "num_heads", "ffn",
                                                         "root", "format", "classes", "epochs", "batch_size",
                                                         "lr", "seed", "device"]) + "}\n"), "config dump"),
    (_display({"text/plain": "   a  \\\n0  1  \n\n   b\n0  2"}), "wraps"),
    ({"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["ValueError: bad"]},
     "stored error ValueError"),
])
def test_clean_output_check_catches(output, message):
    problems = checks.clean_output_problems(_notebook(output), "planted")
    assert any(message in p for p in problems), problems


def test_clean_output_check_passes_readable_outputs():
    ok = _notebook(_stream("train demo: 100%|██████████| 330/330 [00:42<00:00,  7.80it/s]\n"),
                   _stream("wrote runs/00_quickstart/results.json; see https://github.com/easyoo/Omni-AD\n"),
                   _display({"text/plain": "  a  b\n0  1  2", "text/html": "<table><tr><td>1</td></tr></table>"}),
                   _display({"text/markdown": "**a long sentence** " * 20,  # markdown reflows: any length
                             "text/plain": "<IPython.core.display.Markdown object>"}))
    assert checks.clean_output_problems(ok, "ok") == []
    # carriage returns overwrite: a text progress bar redrawn 50 times is one visible line
    assert checks.shown_lines(_stream("".join(f"\r{i}%" for i in range(50)) + "\n")) == ["49%"]


def test_static_check_catches_empty_figures_and_widgets_without_pictures():
    widget = {checks.WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
              "text/plain": "VBox(children=...)"}
    problems = checks.static_output_problems(_notebook(_display(widget)), "planted")
    assert any("widget without a static picture" in p for p in problems)
    assert checks.static_output_problems(_notebook(_display(widget), _display({"image/png": _png()})), "ok") == []
    assert checks.static_output_problems(_notebook(_display({**widget, "image/png": _png()})), "ok") == []
    figure_text = {"text/plain": "<Figure size 640x480 with 0 Axes>"}
    assert any("without its picture" in p
               for p in checks.static_output_problems(_notebook(_display(figure_text)), "planted"))
    blank = checks.static_output_problems(_notebook(_display({"image/png": _png(blank=True)})), "planted")
    assert any("empty" in p for p in blank)


@pytest.mark.slow
def test_html_check_catches_a_widget_that_html_cannot_show():
    model_id = "0123456789abcdef"
    widget = {checks.WIDGET_VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0},
              "text/plain": "VBox()", "image/png": _png()}
    nb = _notebook(_display(widget))
    assert checks.html_problems(nb, "ok") == []  # no saved state: nbconvert falls back to the PNG
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0,
        "state": {model_id: {"model_name": "VBoxModel", "model_module": "@jupyter-widgets/controls",
                             "model_module_version": "2.0.0", "state": {}}}}}
    problems = checks.html_problems(nb, "planted")  # saved state: nbconvert shows the widget, not the PNG
    assert any("widget with no static picture" in p for p in problems), problems
    nb.cells[0].outputs.append(nbformat.from_dict(_display({"image/png": _png()})))
    assert checks.html_problems(nb, "ok") == []  # the separate picture is what a static view shows


def unexecuted_cells(nb: nbformat.NotebookNode) -> list[str]:
    """Code cells of a notebook that were never executed (no execution count): a render without outputs."""
    return [c.get("id", str(i)) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and c.source.strip() and c.get("execution_count") is None]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebooks_are_executed(path):
    """Every committed notebook is the executed one (``make notebooks``), not a fresh render without outputs."""
    missing = unexecuted_cells(checks.read(path))
    assert not missing, f"{path.name}: code cells without an execution count: {missing[:5]} (run make notebooks)"


def test_unexecuted_cells_are_found():
    nb = _notebook()
    assert unexecuted_cells(nb) == ["c1"]  # a fresh code cell has execution_count None
    nb.cells[0].execution_count = 1
    assert unexecuted_cells(nb) == []
