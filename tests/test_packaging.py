"""pyproject.toml and environment.yml list the same dependencies; the Colab install set keeps Colab's runtime."""
from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# pip must keep the torch build a runtime already has (Colab's CUDA build): lower bounds only
RUNTIME_TORCH = {"torch", "torchvision"}
# what a Colab install must never pull in (Colab has its own notebook front end)
NOT_ON_COLAB = {"jupyterlab", "notebook", "jupyter", "jupyter-server", "jupyterlab-server", "nbclassic"}


def _norm(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    name = m.group(1).lower().replace("_", "-")
    spec = ",".join(sorted(p.strip() for p in m.group(2).split(",") if p.strip()))
    return name, spec


def _pyproject_requirements() -> set[tuple[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_norm(r) for r in reqs}


def _environment_requirements() -> set[tuple[str, str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_list = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_norm(r) for r in pip_list if not r.startswith("-e")}


def test_environment_matches_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert py == env, f"only in pyproject: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_every_dependency_is_bounded():
    for name, spec in _pyproject_requirements():
        if name in RUNTIME_TORCH:
            assert spec.startswith(">=") and "," not in spec, f"{name}: a lower bound only, got {spec!r}"
        else:
            assert ">=" in spec and "<" in spec.replace("<=", ""), f"{name} needs a lower and an upper bound"


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def colab_install_set() -> list[Requirement]:
    """What ``pip install "omniad_lite[colab] @ git+URL"`` asks for: the base dependencies + the colab extra."""
    project = _project()
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["colab"]]


def closure(requirements: list[Requirement]) -> dict[str, list[Requirement]]:
    """Every distribution the requirements pull in, transitively, read from the installed packages' metadata.

    Returns ``{name: [the requirements on it]}``; extras are followed, environment markers evaluated here.
    """
    found: dict[str, list[Requirement]] = {}
    todo = list(requirements)
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        first = name not in found
        found.setdefault(name, []).append(req)
        try:
            dist_requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue  # not installed here: its own requirements cannot be followed (asserted below)
        if first or req.extras:
            for text in dist_requires:
                sub = Requirement(text)
                envs = [{"extra": e} for e in req.extras] or [{"extra": ""}]
                if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                    todo.append(sub)
    return found


def test_repository_url_is_named_once():
    urls = _project()["urls"]
    assert list(urls) == ["Repository"] and re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", urls["Repository"])
    # sources only: the rendered notebooks are checked by tests/test_colab_helpers.py (built afresh)
    placeholder = "YOUR" + "_ORG"
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
                 and p.suffix in {".py", ".md", ".toml", ".yml", ".yaml", ".txt"}
                 and not any(part.startswith(".") or part in ("runs", "build", "dist")
                             for part in p.relative_to(ROOT).parts)
                 and placeholder in p.read_text(errors="ignore")]
    assert not offenders, f"placeholder repository path in {offenders}"


def test_colab_install_set_keeps_the_runtime():
    """No JupyterLab anywhere in what the Colab install pulls in, and no requirement that could replace torch."""
    reqs = colab_install_set()
    names = {canonicalize_name(r.name) for r in reqs}
    assert RUNTIME_TORCH <= names and "papermill" in names
    pulled = closure(reqs)
    assert not set(pulled) & NOT_ON_COLAB, f"the Colab install pulls in {sorted(set(pulled) & NOT_ON_COLAB)}"
    missing = sorted(n for n in pulled if n not in {canonicalize_name(d.metadata["Name"]) for d in md.distributions()})
    assert not missing, f"cannot follow the requirements of {missing}: not installed in this environment"
    for name in RUNTIME_TORCH:
        for req in pulled[name]:
            ops = {s.operator for s in req.specifier}
            assert ops <= {">=", ">"}, f"{req} (wanted by the Colab install) could replace the runtime's {name}"


def test_environment_has_no_build_strings_or_prefix():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "prefix" not in env
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            assert dep.count("=") <= 2 and not re.search(r"=[^=<>]*=", dep.replace(">=", "").replace("<=", "")), dep
