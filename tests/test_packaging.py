"""pyproject.toml and environment.yml must list the same dependencies with the same bounds."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


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
        assert ">=" in spec and "<" in spec.replace("<=", ""), f"{name} needs a lower and an upper bound"


def test_environment_has_no_build_strings_or_prefix():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "prefix" not in env
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            assert dep.count("=") <= 2 and not re.search(r"=[^=<>]*=", dep.replace(">=", "").replace("<=", "")), dep
