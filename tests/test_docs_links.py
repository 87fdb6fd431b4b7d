"""Links in the documentation resolve: README.md, the guide (docs/*.md) and the notebooks' markdown.

Every relative link or image must point at a file of the repository and, when it names an anchor, at a
heading of that file, with GitHub's rule for heading anchors (lower case; punctuation and symbols dropped;
letters, digits, ``_`` and ``-`` kept; each space a ``-``; a repeated heading gets ``-1``, ``-2``, ...).
Every page of the guide must be linked from the README. The checker runs on the real tree and, to show it
can fail, on a small tree with planted broken links.
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
TARGETS = (
    re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"),  # [text](target), ![alt](target)
    re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']"""),       # <img src=...>, <a href=...>
    re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M),     # [ref]: target
)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (its github-slugger rules), from the heading's markdown text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link or image keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c) in {"Ll", "Lu", "Lt", "Lm", "Lo",
                                                                                 "Nd", "Nl", "Mn", "Mc"})
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a markdown text (headings inside code fences do not count)."""
    seen: dict[str, int] = {}
    found = set()
    for _, title in HEADING.findall(FENCE.sub("", markdown)):
        base = github_slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def link_targets(markdown: str) -> list[str]:
    """Link and image targets of a markdown text, outside code fences, inline code and HTML comments."""
    text = INLINE_CODE.sub("", FENCE.sub("", HTML_COMMENT.sub("", markdown)))
    return [m for pattern in TARGETS for m in pattern.findall(text)]


def notebook_markdown(path: Path) -> str:
    """The markdown of a notebook: its markdown cells (.ipynb) or its ``# %% [markdown]`` blocks (cells/*.py)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    blocks, current = [], None
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            current = [] if line.strip() == "# %% [markdown]" else None
            if current is not None:
                blocks.append(current)
        elif current is not None:
            current.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    return "\n\n".join("\n".join(b) for b in blocks)


def documents(root: Path) -> dict[Path, tuple[Path, str]]:
    """Each checked document → (the folder its links are relative to, its markdown)."""
    docs = {p: (p.parent, p.read_text()) for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))]
            if p.is_file()}
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        docs[nb] = (nb.parent, notebook_markdown(nb))
    for src in sorted((root / "notebooks" / "cells").glob("[0-9][0-9]_*.py")):
        docs[src] = (root / "notebooks", notebook_markdown(src))  # rendered into notebooks/
    return docs


def _anchors_of(path: Path) -> set[str]:
    if path.suffix == ".ipynb":
        return anchors(notebook_markdown(path))
    return anchors(path.read_text()) if path.suffix == ".md" else set()


def broken_links(root: Path) -> list[str]:
    """``"<document>: <target> (<why>)"`` for every relative link that does not resolve."""
    root = root.resolve()
    problems = []
    for doc, (base, text) in documents(root).items():
        for target in link_targets(text):
            if SCHEME.match(target) or target.startswith("//"):
                continue  # absolute URLs are not checked (no network in the tests)
            path_part, _, anchor = target.partition("#")
            dest = (base / path_part).resolve() if path_part else doc
            where = f"{doc.relative_to(root)}: {target}"
            if not dest.is_relative_to(root):
                problems.append(f"{where} (outside the repository)")
            elif not dest.exists():
                problems.append(f"{where} (no such file)")
            elif anchor and dest.is_file() and anchor not in _anchors_of(dest):
                problems.append(f"{where} (no heading with anchor #{anchor})")
    return problems


def unlinked_pages(root: Path) -> list[str]:
    """Pages of the guide (docs/*.md) that the README does not link."""
    root = root.resolve()
    readme = root / "README.md"
    linked = {(root / t.partition("#")[0]).resolve() for t in link_targets(readme.read_text())
              if not SCHEME.match(t) and t.partition("#")[0]}
    return [str(p.relative_to(root)) for p in sorted((root / "docs").glob("*.md")) if p.resolve() not in linked]


def test_every_relative_link_resolves():
    problems = broken_links(ROOT)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_links_every_guide_page():
    missing = unlinked_pages(ROOT)
    assert not missing, f"guide pages the README does not link: {missing}"


def test_every_guide_page_links_a_notebook():
    """Each guide page points the reader at the notebook that teaches its concept."""
    lonely = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "README.md"
              and not any(re.search(r"notebooks/\d\d_\w+\.ipynb", t) for t in link_targets(p.read_text()))]
    assert not lonely, f"guide pages without a link to a notebook: {lonely}"


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_github_slugs_by_hand():
    assert github_slug("Several GPUs (or processes): torchrun") == "several-gpus-or-processes-torchrun"
    assert github_slug("`make demo`") == "make-demo"
    assert github_slug("C++ & Python") == "c--python"  # each space becomes a hyphen, symbols go
    assert github_slug("4. Size (1×3×256², measured)") == "4-size-13256-measured"
    assert github_slug("What's [new](x.md) in `data_formats`?") == "whats-new-in-data_formats"
    assert anchors("# Usage\n## Usage\n```\n# not a heading\n```\n### Usage") == {"usage", "usage-1", "usage-2"}


def _planted_tree(root: Path) -> None:
    (root / "docs").mkdir(parents=True)
    (root / "notebooks" / "cells").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("# Page A\n\n## Set-up and tests\n\nBack to [the top](../README.md#top).\n"
                                        "![diagram](images/missing.png) and [ok](#set-up-and-tests)\n"
                                        "```\n[in a code block](nowhere.md)\n```\n")
    (root / "docs" / "b.md").write_text("# Page B\n\n[A](a.md#setup-and-tests) `[code](nowhere.md)`\n")
    (root / "README.md").write_text("# Top\n\n[A](docs/a.md) [web](https://example.com/x.md)\n"
                                    "<!-- [hidden](gone.md) -->\n")
    cell = {"cell_type": "markdown", "metadata": {}, "source": ["# 00 · Title\n", "[guide](../docs/c.md)\n"]}
    (root / "notebooks" / "00_x.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4,
                                                               "nbformat_minor": 5}))
    (root / "notebooks" / "cells" / "00_x.py").write_text("# %% [markdown]\n# # 00\n# [B](../docs/b.md#page-c)\n"
                                                          "# %%\nx = '[not markdown](nowhere.md)'\n")


def test_the_checker_finds_planted_broken_links(tmp_path):
    _planted_tree(tmp_path)
    assert sorted(broken_links(tmp_path)) == sorted([
        "docs/a.md: images/missing.png (no such file)",
        "docs/b.md: a.md#setup-and-tests (no heading with anchor #setup-and-tests)",
        "notebooks/00_x.ipynb: ../docs/c.md (no such file)",
        "notebooks/cells/00_x.py: ../docs/b.md#page-c (no heading with anchor #page-c)",
    ])
    assert unlinked_pages(tmp_path) == ["docs/b.md"]
