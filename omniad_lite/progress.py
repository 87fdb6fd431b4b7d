"""Progress bars that suit where the code runs: live widgets for a person, one plain line in a stored notebook.

``tqdm.auto`` draws an ipywidgets bar in any Jupyter kernel. That is right in JupyterLab, but a notebook
executed by papermill, nbconvert or nbval stores the widget without a picture (nbconvert HTML and GitHub
show a blank or a stale ``0%``), and a text bar would store one output per redraw. So the kit asks who is
watching: :func:`interactive_frontend` is true when the kernel's current request allows ``input()`` — what
JupyterLab, Notebook, VS Code and Colab send — and false for the batch runners (papermill/nbclient and nbval
execute with ``allow_stdin=False``). Batch runs get :class:`LineTqdm`, which draws nothing while it runs and
prints its final state as one line on stdout when it closes (bars made with ``leave=False`` print nothing).
Outside a kernel (a terminal, a script) the usual text bar on stderr is kept.

Set ``OMNIAD_LITE_PROGRESS`` to ``widget``, ``text``, ``line`` or ``off`` to choose explicitly. Ours (the
released code, github easyoo/Omni-AD, prints log lines); the selection rule follows ``tqdm.autonotebook``.
"""
from __future__ import annotations

import os
import sys

from tqdm.std import tqdm as std_tqdm

from .errors import InputError

PROGRESS_ENV = "OMNIAD_LITE_PROGRESS"
MODES = ("widget", "text", "line", "off")
LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"  # a finished bar needs no bar


def _kernel():
    """The running IPython kernel object, or ``None`` outside a Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def interactive_frontend() -> bool:
    """True inside a Jupyter kernel whose frontend a person uses (it accepts ``input()``), else False.

    papermill, nbconvert (nbclient) and nbval send ``allow_stdin=False`` with every cell; interactive
    frontends send ``True``. Kernels that do not record the flag count as interactive.
    """
    kernel = _kernel()
    return kernel is not None and bool(getattr(kernel, "_allow_stdin", True))


def progress_mode() -> str:
    """One of :data:`MODES`: the ``OMNIAD_LITE_PROGRESS`` environment variable, else chosen from the context.

    ``widget`` in an interactive kernel with ipywidgets installed, ``line`` in a batch-executed kernel (or
    an interactive one without ipywidgets), ``text`` outside a kernel.

    Raises:
        ValueError: the environment variable holds another value.
    """
    mode = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if mode:
        if mode not in MODES:
            raise InputError(f"{PROGRESS_ENV}={mode!r}; use one of {', '.join(MODES)} (or unset it)")
        return mode
    if _kernel() is None:
        return "text"
    if not interactive_frontend():
        return "line"
    try:
        import ipywidgets  # noqa: F401 (lazy: optional, the notebooks extra)
    except ImportError:
        return "line"
    return "widget"


class LineTqdm(std_tqdm):
    """A tqdm bar that draws nothing while it runs and writes one line when it closes (with ``leave``).

    For outputs that are stored rather than watched: a notebook executed by papermill keeps every redraw
    of an ordinary text bar as a separate output. The line is tqdm's own meter without the bar itself
    (``train demo: 300/300 [00:45, 6.6it/s, loss=...]``), written to ``file`` (stdout by default, so a
    stored notebook shows no stderr).
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("file", sys.stdout)
        kwargs.setdefault("bar_format", LINE_FORMAT)
        kwargs["dynamic_ncols"] = False  # the width of a stored line is not a terminal's
        kwargs["ncols"] = None
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):  # tqdm's documented override point
        """Called by tqdm on every redraw; writes only the final meter, when a kept bar is closed."""
        if self.disable and msg is None:  # close() of a bar with leave=True: the last state, once
            self.fp.write(self.format_meter(**self.format_dict))
            return True
        return False  # nothing drawn, so close() of a leave=False bar has nothing to erase


def tqdm(*args, **kwargs):
    """``tqdm(...)`` with the bar class :func:`progress_mode` selects (same arguments as ``tqdm.tqdm``)."""
    mode = progress_mode()
    if mode == "off":
        kwargs["disable"] = True
        return std_tqdm(*args, **kwargs)
    if mode == "line":
        return LineTqdm(*args, **kwargs)
    if mode == "widget":
        from tqdm.notebook import tqdm as notebook_tqdm  # lazy: needs the optional ipywidgets

        return notebook_tqdm(*args, **kwargs)
    return std_tqdm(*args, **kwargs)


tqdm.write = std_tqdm.write  # ``tqdm.write(line)``: print without breaking an open bar, as with tqdm itself
