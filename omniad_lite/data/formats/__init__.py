"""Readers for the dataset layouts of ``docs/data_formats.md``, one module per layout.

Each module exposes ``EXPECTED`` (the file or folder that identifies the layout, for error messages),
``looks_like(root)``, ``list_classes(root, **options)`` and ``read(root, split, classes, **options)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def reject_options(fmt: str, options: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
    """Raise when ``options`` holds keys the format ``fmt`` does not understand."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise DataError(f"unknown option(s) {unknown} for format {fmt!r}; valid options: {valid}")


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise ``FileNotFoundError`` saying what it should be."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; check the dataset is fully extracted")
    return path


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
