"""Writing files so that a crash mid-write never leaves a half-written file in place.

Every file the kit writes into a run directory or a cache goes through :func:`atomic_write`: the content is
written to a temporary file in the same folder and renamed over the target (``os.replace`` is atomic on
POSIX), so readers see either the old file or the new one. Torch-free.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | Path, write_fn: Callable[[str], Any]) -> None:
    """Write ``path`` through ``write_fn(tmp_path)`` into a temporary file, then rename it into place.

    Args:
        path: the target file (its folder is created).
        write_fn: writes the content to the temporary path it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | Path, payload: Any) -> None:
    """Atomically write ``payload`` as indented JSON (NaN is not allowed: pass ``None`` for missing values)."""
    write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path, what: str = "file") -> Any:
    """Read a JSON file; a missing or malformed file raises one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} {path} is not valid JSON ({e}); restore or delete it") from None
