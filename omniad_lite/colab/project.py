"""Where the kit comes from: its repository URL (one source: ``pyproject.toml``) and its notebooks.

A notebook opened alone (on Colab, from its badge) has no sibling files; :func:`notebook_file` finds another
tutorial notebook next to it, in ``notebooks/`` of a checkout, or downloads it from the repository.
"""
from __future__ import annotations

import importlib.metadata
import re
import shutil
import tomllib
import urllib.request
from pathlib import Path

DIST = "omniad_lite"
URL_LABEL = "Repository"  # the ``[project.urls]`` key that names the repository
BRANCH = "main"           # the branch the Colab badges open (notebooks/build_notebooks.py)
NOTEBOOK_DIRS = (".", "notebooks")
_GITHUB = re.compile(r"^https://github\.com/([\w.-]+)/([\w.-]+?)/?$")


def repository_url() -> str | None:
    """``[project.urls] Repository``: from the installed package's metadata, else from a source checkout."""
    try:
        for entry in importlib.metadata.metadata(DIST).get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip() == URL_LABEL:
                return url.strip()
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        if project.get("name") == DIST:
            return project.get("urls", {}).get(URL_LABEL)
    return None


def raw_url(path: str, repository: str | None = None) -> str:
    """The download URL of ``path`` (relative to the repository root) on the badge branch."""
    repository = repository or repository_url()
    match = _GITHUB.match(repository or "")
    if match is None:
        raise ValueError(f"cannot download {path}: the repository URL {repository!r} is not "
                         f"https://github.com/<owner>/<name> (pyproject.toml [project.urls] {URL_LABEL})")
    owner, name = match.groups()
    return f"https://raw.githubusercontent.com/{owner}/{name}/{BRANCH}/{path}"


def notebook_file(name: str, dest: str | Path = ".", base_url: str | None = None) -> Path:
    """A tutorial notebook by path or name: local first, else downloaded from the repository into ``dest``.

    Args:
        name: a path to an ``.ipynb`` file, or a notebook name such as ``"03_training.ipynb"``.
        dest: where a downloaded copy is written.
        base_url: where the repository's files are (default: the raw GitHub URL of :func:`repository_url`);
            ``file://`` URLs work too.

    Raises:
        FileNotFoundError: not found locally and the download failed (names both places and the fix).
    """
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() or path.parent != Path(".") else [Path(d) / name for d in NOTEBOOK_DIRS]
    found = next((p for p in candidates if p.is_file()), None)
    if found is not None:
        return found
    url = f"{base_url.rstrip('/')}/notebooks/{path.name}" if base_url else raw_url(f"notebooks/{path.name}")
    target = Path(dest) / path.name
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as e:
        target.unlink(missing_ok=True)
        raise FileNotFoundError(f"notebook {name!r} is not in {[str(p) for p in candidates]} and could not be "
                                f"downloaded from {url} ({e}); pass its path") from e
    print(f"downloaded {url} -> {target}")
    return target
