"""Checks on executed notebooks: what a reader sees in JupyterLab, on GitHub and in nbconvert's HTML.

Each check takes a notebook (``nbformat`` node) and returns a list of problems, one readable line each
(``"03_training cell 03-07: ..."``), so a failing test says exactly which cell to fix. Used by
``tests/test_notebook_outputs.py`` on the committed notebooks, by ``tests/test_notebook_reproduce.py`` on
the session's executions (``tests/notebook_session.py``), and on planted bad examples.
"""
from __future__ import annotations

import base64
import dataclasses
import io
import re
from pathlib import Path

import nbformat
import numpy as np

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MAX_OUTPUT_LINES = 40  # a cell's outputs, as a reader sees them (stream lines, table rows)
MAX_LINE_CHARS = 100  # widest text line (tables included) that reads without wrapping
CONFIG_DUMP_KEYS = 12  # this many config field names printed as keys = a config dump
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TEXT_TYPES = ("text/plain", "text/markdown", "text/html", "text/latex")
# an absolute POSIX path (two or more segments, not inside a URL or a relative path), a Windows drive path,
# or a temp folder name
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~%-])/(?:[\w.-]+/)+[\w.-]*"  # /root/.cache/x, /tmp/y/z
                           r"|\b[A-Za-z]:\\\\?[\w.-]+"  # C:\Users
                           r"|\.tmp\d+|\btmp[a-z0-9_]{6,}\b")  # .demo.tmp1234, tmpzyumi8vo
TABLE_ROW = re.compile(r"<tr\b")
PANDAS_WRAP = re.compile(r" \\$", re.M)  # pandas ends a wrapped table's lines with " \"


def committed_notebooks() -> list[Path]:
    """Every numbered tutorial notebook in ``notebooks/`` (``NN_name.ipynb``)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def config_field_names() -> set[str]:
    """The field names of the experiment config (what a printed config would show as keys)."""
    from omniad_lite.config import DataConfig, ModelConfig, TrainConfig

    return {f.name for cls in (ModelConfig, DataConfig, TrainConfig) for f in dataclasses.fields(cls)}


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def visible_stream(text: str) -> str:
    """A stream as a terminal or JupyterLab shows it: text before a carriage return in a line is overwritten."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _where(name: str, cell) -> str:
    return f"{name} cell {cell.get('id', '?')}"


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def shown_lines(output) -> list[str]:
    """The text lines a reader sees for one output (tables count one line per row)."""
    kind = output.get("output_type")
    if kind == "stream":
        return visible_stream(_text(output.get("text", ""))).strip("\n").splitlines()
    if kind == "error":
        return list(output.get("traceback", []))
    data = output.get("data", {})
    if "text/html" in data:
        html = _text(data["text/html"])
        if "<table" in html:
            return ["row"] * len(TABLE_ROW.findall(html))
        return html.strip().splitlines()
    if any(k.startswith("image/") for k in data) or WIDGET_VIEW in data:
        return []
    return _text(data.get("text/plain", "")).strip("\n").splitlines()


def output_texts(output) -> list[str]:
    """Every text an output carries (stream text, each text MIME type, an error's message)."""
    if output.get("output_type") == "stream":
        return [_text(output.get("text", ""))]
    if output.get("output_type") == "error":
        return [f"{output.get('ename')}: {output.get('evalue')}"]
    return [_text(v) for k, v in output.get("data", {}).items() if k in TEXT_TYPES]


def fixed_width_texts(output) -> list[str]:
    """The texts shown in a fixed-width font, line by line as stored: streams, and text/plain when it is the
    output's only text (text/plain beside HTML counts too: it is the table's width; markdown reflows)."""
    if output.get("output_type") == "stream":
        return [visible_stream(_text(output.get("text", "")))]
    data = output.get("data", {})
    if "text/plain" in data and "text/markdown" not in data and WIDGET_VIEW not in data:
        return [_text(data["text/plain"])]
    return []


def clean_output_problems(nb, name: str, config_keys: set[str] | None = None) -> list[str]:
    """Stored outputs that would not read well: stderr, errors, long or wide outputs, paths, config dumps."""
    config_keys = config_field_names() if config_keys is None else config_keys
    key_pattern = re.compile(r"""["']?\b(%s)\b["']?\s*[:=]""" % "|".join(sorted(config_keys)))
    problems = []
    for cell in _code_cells(nb):
        where = _where(name, cell)
        lines = 0
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                problems.append(f"{where}: writes to stderr: {visible_stream(_text(out['text'])).strip()[:120]!r}")
            if out.get("output_type") == "error":
                problems.append(f"{where}: stored error {out.get('ename')}: {out.get('evalue')}")
            shown = shown_lines(out)
            lines += len(shown)
            for plain in fixed_width_texts(out):
                wide = [line for line in plain.splitlines() if len(line) > MAX_LINE_CHARS]
                if wide:
                    problems.append(f"{where}: a line of {len(wide[0])} characters (max {MAX_LINE_CHARS}): "
                                    f"{wide[0][:60]!r}...")
                if PANDAS_WRAP.search(plain) and out.get("output_type") != "stream":
                    problems.append(f"{where}: a table wider than pandas' display.width wraps; set "
                                    f"pd.set_option('display.width', {MAX_LINE_CHARS}) or show fewer columns")
            for text in output_texts(out):
                plain = visible_stream(text) if out.get("output_type") == "stream" else text
                if (m := ABSOLUTE_PATH.search(re.sub(r"<[^>]+>", " ", plain))) is not None:
                    problems.append(f"{where}: absolute or temp path {m.group(0)!r} in an output")
                keys = set(key_pattern.findall(plain))
                if len(keys) >= CONFIG_DUMP_KEYS:
                    problems.append(f"{where}: looks like a config dump ({len(keys)} config keys); show the "
                                    "values that matter as a table")
        if lines > MAX_OUTPUT_LINES:
            problems.append(f"{where}: {lines} output lines (max {MAX_OUTPUT_LINES})")
    return problems


def is_blank_png(b64: str) -> bool:
    """True when a base64 PNG is one flat colour (an empty figure)."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))
    return bool(image.size == 0 or (image == image.reshape(-1, 3)[0]).all())


def static_output_problems(nb, name: str) -> list[str]:
    """Outputs that show nothing without a live kernel: empty figures, widgets with no static picture."""
    problems = []
    for cell in _code_cells(nb):
        where = _where(name, cell)
        outputs = cell.get("outputs", [])
        for k, out in enumerate(outputs):
            data = out.get("data", {})
            plain = _text(data.get("text/plain", ""))
            if plain.startswith("<Figure size") and "image/png" not in data:
                problems.append(f"{where}: a figure stored without its picture ({plain.strip()})")
            if "image/png" in data and is_blank_png(_text(data["image/png"])):
                problems.append(f"{where}: an empty (single-colour) figure")
            if WIDGET_VIEW in data:
                later = any("image/png" in o.get("data", {}) for o in outputs[k + 1:])
                if "image/png" not in data and not later:
                    problems.append(f"{where}: a widget without a static picture ({plain.strip()[:60]!r}); "
                                    "viewers without widgets (GitHub, nbconvert HTML) show nothing")
    return problems


def html_problems(nb, name: str) -> list[str]:
    """Convert to HTML as ``jupyter nbconvert --to html`` does; every picture a cell holds must be in its HTML."""
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(nb)
    chunks = re.split(r'(?=<div class="jp-Cell [^"]*"[^>]*\bid="cell-id=)', html)  # one chunk per cell
    by_id = {}
    for chunk in chunks:
        m = re.match(r'<div class="jp-Cell [^"]*"[^>]*\bid="cell-id=([^"]+)"', chunk)
        if m:
            by_id[m.group(1)] = chunk
    problems = []
    for cell in _code_cells(nb):
        where = _where(name, cell)
        outputs = cell.get("outputs", [])
        images = sum(1 for o in outputs if "image/png" in o.get("data", {}))
        widgets = sum(1 for o in outputs if WIDGET_VIEW in o.get("data", {}))
        if not images and not widgets:
            continue
        chunk = by_id.get(cell.get("id"))
        if chunk is None:
            problems.append(f"{where}: not found in the HTML")
            continue
        shown = re.findall(r'<img\s[^>]*src="data:image/png;base64,([^"]+)"', chunk)
        if widgets and not shown:
            problems.append(f"{where}: the HTML shows a widget with no static picture")
        elif len([s for s in shown if s]) < images - widgets:
            problems.append(f"{where}: {images} pictures in the notebook, {len(shown)} in the HTML")
    return problems


def read(path: Path):
    return nbformat.read(path, as_version=4)


# -- reproduction: nbval's contract, checked on the session's execution (tests/notebook_session.py) --------
# nbval 0.11's keys left out of the comparison (IPyNbFile.skip_compare without --nbdime): metadata, counters,
# widget model ids (random) and pictures (pixel noise across library versions)
SKIP_COMPARE = frozenset({"metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                          WIDGET_VIEW, "image/png", "image/jpeg"})
# NBVAL_CHECK_OUTPUT / NBVAL_IGNORE_OUTPUT and the raises-exception tag (papermill honours the tag, not the
# NBVAL_RAISES_EXCEPTION comment); papermill runs every cell, so NBVAL_SKIP cannot be honoured
SUPPORTED_OPTIONS = {"check", "check_exception"}


def nbval_options(cell) -> dict:
    """nbval's options for a code cell, from its comment markers and tags (comments win, as in nbval)."""
    from nbval.plugin import find_comment_markers, find_metadata_tags

    options = dict(find_metadata_tags(cell.metadata))
    options.update(dict(find_comment_markers(cell.source)))
    return options


def comparable_outputs(outputs) -> dict[str, list]:
    """Outputs as nbval compares them: streams of one name merged (``\\r`` and ``\\b`` applied), MIME bundles
    flattened, :data:`SKIP_COMPARE` keys dropped; key → its values in order."""
    from nbval.plugin import coalesce_streams, transform_streams_for_comparison

    merged = transform_streams_for_comparison(coalesce_streams([nbformat.from_dict(o) for o in outputs]))
    values: dict[str, list] = {}
    for out in merged:
        for key, value in out.items():
            if key in SKIP_COMPARE:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for k, v in items:
                if k not in SKIP_COMPARE:
                    values.setdefault(k, []).append(_text(v) if isinstance(v, list) else v)
    return values


def reproduction_problems(executed, committed, name: str) -> list[str]:
    """Cells marked ``NBVAL_CHECK_OUTPUT`` in ``committed`` whose outputs in ``executed`` differ (nbval's rules)."""
    ran = {c.get("id"): c for c in _code_cells(executed)}
    problems = []
    for cell in _code_cells(committed):
        where = _where(name, cell)
        options = nbval_options(cell)
        unsupported = sorted(set(options) - SUPPORTED_OPTIONS)
        if unsupported:
            problems.append(f"{where}: nbval option(s) {unsupported} are not supported (papermill runs every cell; "
                            "use NBVAL_CHECK_OUTPUT or NBVAL_IGNORE_OUTPUT)")
        if options.get("check_exception") and "raises-exception" not in cell.metadata.get("tags", []):
            problems.append(f"{where}: NBVAL_RAISES_EXCEPTION needs the cell tag raises-exception (papermill's)")
        if not (options.get("check") or options.get("check_exception")):
            continue
        if cell.get("id") not in ran:
            problems.append(f"{where}: marked for nbval but not in the executed notebook")
            continue
        if ran[cell.get("id")].source != cell.source:
            problems.append(f"{where}: the executed cell's source differs from the committed one; re-execute the "
                            "notebook (make notebooks)")
            continue
        if options.get("check_exception") and not any(o.get("output_type") == "error"
                                                      for o in ran[cell.get("id")].get("outputs", [])):
            problems.append(f"{where}: tagged raises-exception but raised nothing")
        if not options.get("check"):
            continue
        want = comparable_outputs(cell.get("outputs", []))
        got = comparable_outputs(ran[cell.get("id")].get("outputs", []))
        if want != got:
            problems.append(f"{where}: output differs from the committed one (NBVAL_CHECK_OUTPUT)\n"
                            f"  committed: {want!r}\n  executed:  {got!r}")
    return problems
