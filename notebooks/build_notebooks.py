"""Write the tutorial notebooks' cells (sources only) — the single place the notebooks are authored.

    python notebooks/build_notebooks.py            # rewrite every notebooks/NN_*.ipynb (outputs cleared)
    python notebooks/build_notebooks.py 03         # only the notebooks whose name starts with 03

Then execute them with their defaults so they are committed with outputs (``make notebooks`` does both):

    cd notebooks && papermill 00_quickstart.ipynb 00_quickstart.ipynb

The cell texts live in ``notebooks/cells/NN_*.py`` files, separated by ``# %%`` markers (``# %% [markdown]``
for text cells, ``# %% [parameters]`` for the papermill parameters cell, the jupytext "percent" style).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
REPO = "YOUR_ORG/omniad_lite"  # GitHub owner/name used by the Colab badge and install cell; see the README
MARKER = re.compile(r"^# %%(?: \[(markdown|parameters)\])?[ \t]*$", re.M)


def _cells(text: str) -> list:
    parts = MARKER.split(text)
    cells = []
    # parts: [preamble, kind1, body1, kind2, body2, ...]
    for kind, body in zip(parts[1::2], parts[2::2]):
        body = body.strip("\n").replace("{REPO}", REPO)
        if kind == "markdown":
            src = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            cell = nbformat.v4.new_code_cell(body)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            cells.append(cell)
    return cells


def build(source: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = _cells(source.read_text())
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{source.stem[:2]}-{i:02d}"  # stable ids: clean diffs
    out = HERE / f"{source.stem}.ipynb"
    nbformat.write(nb, out)
    return out


def main(argv: list[str]) -> None:
    sources = sorted((HERE / "cells").glob("[0-9][0-9]_*.py"))
    if argv:
        sources = [s for s in sources if any(s.name.startswith(a) for a in argv)]
    for s in sources:
        print("wrote", build(s).relative_to(HERE.parent))


if __name__ == "__main__":
    main(sys.argv[1:])
