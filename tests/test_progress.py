"""omniad_lite.progress: widget bars for a person, one plain line in a batch-executed notebook."""
from __future__ import annotations

import io
import sys
import types

import ipywidgets  # noqa: F401  (imported before the tests replace IPython with a fake)
import pytest

from omniad_lite import progress


def _fake_kernel(monkeypatch, allow_stdin):
    kernel = types.SimpleNamespace() if allow_stdin is None else types.SimpleNamespace(_allow_stdin=allow_stdin)
    shell = types.SimpleNamespace(kernel=kernel)
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_line_bar_prints_only_its_final_state_once():
    out = io.StringIO()
    bar = progress.LineTqdm(total=50, desc="train demo", file=out, mininterval=0)
    for _ in range(50):
        bar.update(1)
    assert out.getvalue() == ""  # nothing while running: no redraws to store
    bar.set_postfix(loss="0.0123")
    bar.close()
    text = out.getvalue()
    assert text.count("\n") == 1 and "\r" not in text
    assert text.startswith("train demo: 50/50 [") and text.rstrip().endswith("it/s, loss=0.0123]")


def test_line_bar_with_leave_false_prints_nothing():
    out = io.StringIO()
    for _ in progress.LineTqdm(range(5), desc="evaluate", file=out, leave=False):
        pass
    assert out.getvalue() == ""


def test_mode_follows_the_frontend(monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert progress.progress_mode() == "text" and not progress.interactive_frontend()  # a script
    _fake_kernel(monkeypatch, allow_stdin=False)  # papermill / nbconvert / nbval
    assert progress.progress_mode() == "line" and not progress.interactive_frontend()
    assert isinstance(progress.tqdm(range(2), disable=True), progress.LineTqdm)
    _fake_kernel(monkeypatch, allow_stdin=True)  # JupyterLab, VS Code, Colab
    assert progress.interactive_frontend() and progress.progress_mode() == "widget"
    _fake_kernel(monkeypatch, allow_stdin=None)  # a kernel that does not record the flag: interactive
    assert progress.interactive_frontend()


def test_environment_variable_overrides(monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, "off")
    bar = progress.tqdm(range(3))
    assert bar.disable
    monkeypatch.setenv(progress.PROGRESS_ENV, "LINE")
    assert progress.progress_mode() == "line"
    monkeypatch.setenv(progress.PROGRESS_ENV, "fancy")
    with pytest.raises(ValueError, match="OMNIAD_LITE_PROGRESS='fancy'; use one of widget, text, line, off"):
        progress.progress_mode()
