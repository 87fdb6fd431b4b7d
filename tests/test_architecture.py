"""The package's shape: layers import downwards only, no import cycles, short modules, unique file names,
torch-free metrics, a code map (docs/contributing.md) that matches the tree.

The import graph is built from the source with ``ast`` (every ``import`` statement, including those inside
functions), so an upward import or a cycle hidden behind a lazy import is caught too.
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

# The layers as the "What is where" diagram of docs/contributing.md draws them, lowest first: a module may
# import its own layer and the layers below, never one above. Keys are the first name under ``omniad_lite``.
LAYERS = [
    {"errors", "config", "presets", "files", "lock", "integrity", "env", "progress", "results", "run"},
    {"data"},
    {"model"},
    {"baselines"},
    {"evaluation"},
    {"viz"},
    {"training"},
    {"export", "methods", "sweep", "predict_folder"},
    {"cli", "__main__", "colab", "notebook_params", "notebook_runs", "notebook_results"},
]
# Imports inside functions need a reason: an optional dependency or a measured start-up cost, said in a
# comment containing "lazy" on the import's line; these modules state theirs once, in their docstring.
LAZY_BY_DESIGN = {
    "omniad_lite.cli": "each handler imports what it runs, so --help and presets answer without torch",
    "omniad_lite.colab.runtime": "the Colab status cell answers before torch is imported",
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
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


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, package.parent): p for p in package.rglob("*.py")}
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


def layer_of(module: str, layers: list[set[str]] = LAYERS, package: str = "omniad_lite") -> int | None:
    """The layer index of ``package.X...`` (``None`` for the package root, which every import runs anyway)."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    for i, names in enumerate(layers):
        if parts[1] in names:
            return i
    raise AssertionError(f"{module}: {parts[1]!r} is in no layer; add it to LAYERS (and to the diagram in "
                         f"docs/contributing.md)")


def upward_imports(graph: dict[str, set[str]], layers: list[set[str]] = LAYERS,
                   package: str = "omniad_lite") -> list[str]:
    """Every edge of ``graph`` that goes from a layer to a higher one."""
    out = []
    for source, targets in sorted(graph.items()):
        here = layer_of(source, layers, package)
        for target in sorted(targets):
            there = layer_of(target, layers, package)
            if here is not None and there is not None and there > here:
                out.append(f"{source} -> {target}")
    return out


def test_the_layer_check_catches_an_upward_import_also_inside_a_function(tmp_path):
    """A synthetic package of three layers: a top-level downward import passes, an upward one inside a
    function body fails."""
    pkg = tmp_path / "omniad_lite"
    for name, body in {"__init__.py": "", "base.py": "X = 1\n",
                       "model/__init__.py": "from ..base import X\n",
                       "model/net.py": "from ..base import X\n\ndef f():\n    from ..tools import helper\n",
                       "tools.py": "from .model import net\n\ndef helper():\n    return 1\n"}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    layers = [{"base"}, {"model"}, {"tools"}]
    graph = import_graph(pkg)
    assert upward_imports(graph, layers) == ["omniad_lite.model.net -> omniad_lite.tools"]
    (pkg / "model/net.py").write_text("from ..base import X\n")
    assert upward_imports(import_graph(pkg), layers) == []


def test_layers_import_downwards_only():
    graph = import_graph()
    assert graph["omniad_lite.evaluation.evaluator"], "the import graph is empty"
    bad = upward_imports(graph)
    assert not bad, "imports that go up a layer (move the code, or the import):\n" + "\n".join(bad)


def test_imports_inside_functions_say_why():
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        if module_name(path) in LAZY_BY_DESIGN:
            continue
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and "lazy" not in lines[node.lineno - 1]:
                        unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not unexplained, ("imports inside functions without a '# lazy: <reason>' comment (move them to the "
                             "top unless an optional dependency or a measured start-up cost needs them):\n"
                             + "\n".join(unexplained))


def test_progress_bars_only_through_progress_py():
    direct = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if p.name != "progress.py"
              and re.search(r"^\s*(from tqdm|import tqdm)", p.read_text(), re.M)]
    assert not direct, f"import tqdm through omniad_lite.progress: {direct}"


def test_no_two_files_share_a_name():
    names: dict[str, list[str]] = {}
    for p in PACKAGE.rglob("*.py"):
        if p.name not in ("__init__.py", "__main__.py"):
            names.setdefault(p.name, []).append(str(p.relative_to(ROOT)))
    shared = {n: ps for n, ps in names.items() if len(ps) > 1}
    assert not shared, f"file names used twice: {shared}"


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
            "omniad_lite.evaluation.metric_tables, omniad_lite.results, omniad_lite.run; "
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
        suffixes = {".py", ".md", ".yaml", ".yml", ".toml", ".ipynb", ".txt", ".cfg"}
        skipped = any(part.startswith(".") or part in ("runs", "build", "dist") for part in p.relative_to(ROOT).parts)
        if p.is_file() and p.name != Path(__file__).name and p.suffix in suffixes and not skipped:
            if bad.search(p.read_text(errors="ignore")):
                offenders.append(str(p.relative_to(ROOT)))
    assert not offenders, f"files referring to documents outside the repo: {offenders}"


def test_lazy_names_are_functions_before_and_after_their_submodules_are_imported():
    code = ("import inspect, omniad_lite\n"
            "from omniad_lite.evaluation import evaluate, predict\n"
            "before = (evaluate, predict, omniad_lite.evaluate, omniad_lite.train)\n"
            "import omniad_lite.evaluation.evaluator, omniad_lite.evaluation.prediction, omniad_lite.methods\n"
            "from omniad_lite.evaluation import evaluate, predict\n"
            "after = (evaluate, predict, omniad_lite.evaluate, omniad_lite.train)\n"
            "assert all(inspect.isfunction(f) for f in before + after) and before == after, (before, after)\n"
            "assert {'evaluate', 'predict', 'load_run'} <= set(dir(omniad_lite.evaluation))\n"
            "assert {'train', 'collect', 'evaluate'} <= set(dir(omniad_lite))\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
