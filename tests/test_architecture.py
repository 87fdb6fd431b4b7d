"""The package's shape: no import cycles, short modules, torch-free metrics, a code map that matches the tree.

The import graph is built from the source with ``ast`` (every ``import`` statement, including those inside
functions), so a cycle hidden behind a lazy import is caught too.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "omniad_lite"
MAX_MODULE_LINES = 350


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> set[str]:
    """The kit modules ``path`` imports (absolute and relative, at any depth of the code)."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("omniad_lite")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            elif (node.module or "").startswith("omniad_lite"):
                target = node.module
            else:
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from pkg import module`
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges = set()
        for target in imports_of(path, name):
            if target not in files or name.startswith(target + "."):
                continue  # not a kit module, or the package this module belongs to (already importing)
            edges.add(target)
            parts = target.split(".")  # importing a.b.c runs the __init__ of a.b first (unless we are inside it)
            for i in range(2, len(parts)):
                parent = ".".join(parts[:i])
                if parent in files and not name.startswith(parent + ".") and name != parent:
                    edges.add(parent)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_detects_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_imports_of_resolves_relative_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from ..data import loading\nfrom .sample import Sample\ndef f():\n    from ..run import RunDir\n")
    got = imports_of(src, "omniad_lite.data.m")
    assert {"omniad_lite.data.loading", "omniad_lite.data.sample", "omniad_lite.run"} <= got


def test_package_has_no_import_cycle():
    graph = import_graph()
    assert "omniad_lite.evaluation.stream" in graph and graph["omniad_lite.evaluation.stream"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_modules_stay_short():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_metrics_import_without_torch():
    code = ("import sys; import omniad_lite.evaluation.metrics, omniad_lite.evaluation.stream, "
            "omniad_lite.evaluation.tables, omniad_lite.results, omniad_lite.run; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_code_map_matches_the_tree():
    """Every path in the "What is where" table (docs/contributing.md) exists, and every package folder is in it."""
    guide = (ROOT / "docs" / "contributing.md").read_text()
    section = guide.split("## What is where", 1)[1].split("\n## ", 1)[0]
    tops = ("omniad_lite/", "docs/", "notebooks/", "data_scripts/", "benchmarks/", "tests/")
    paths = {p for p in re.findall(r"`([\w./-]+/[\w./-]*)`", section) if p.startswith(tops)}
    assert paths, "no paths found in the What is where table of docs/contributing.md"
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"docs/contributing.md lists paths that do not exist: {missing}"
    folders = {f"omniad_lite/{d.name}/" for d in PACKAGE.iterdir() if d.is_dir() and not d.name.startswith("__")}
    unlisted = sorted(f for f in folders if f not in paths)
    assert not unlisted, f"package folders missing from the table in docs/contributing.md: {unlisted}"


def test_no_document_outside_the_repo_is_referenced():
    """The repo stands alone: no file points at ../shared or at the design notes kept outside it."""
    bad = re.compile(r"\.\./shared|\bSPEC\.md\b|\bFORMATS\.md\b|\bSTYLE\.md\b")
    offenders = []
    for p in ROOT.rglob("*"):
        if p.is_file() and p.name != Path(__file__).name and p.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".ipynb", ".txt", ".cfg"} \
                and not any(part.startswith(".") or part in ("runs", "build", "dist") for part in p.relative_to(ROOT).parts):
            if bad.search(p.read_text(errors="ignore")):
                offenders.append(str(p.relative_to(ROOT)))
    assert not offenders, f"files referring to documents outside the repo: {offenders}"
