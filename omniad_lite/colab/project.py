"""Where the kit comes from: its repository URL (one source: ``pyproject.toml``, read from the installed
package's metadata on Colab). Every notebook runs alone, so none needs another notebook's file."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import tomllib

DIST = "omniad_lite"
URL_LABEL = "Repository"  # the ``[project.urls]`` key that names the repository


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

