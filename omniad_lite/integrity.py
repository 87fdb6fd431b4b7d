"""Content hashes of the files the kit reuses (caches, checkpoints), checked before they are trusted.

A *record* is ``{"bytes": size, "sha256": hex}``. A folder whose files must be complete and unmodified
(a checkpoint, a teacher-feature cache) carries a ``manifest.json`` written *last*, holding a record per
file; :func:`verify_folder` then tells in one phrase what is wrong (missing, truncated, content differs).

Hashing runs at disk speed or at SHA-256 speed, whichever is lower (about 1.3 GB/s on one core of the
development machine, which has SHA instructions). A file's hash is remembered for the life of the process,
keyed by its inode, size and modification time, so a cache opened at every periodic evaluation is hashed
once. Torch-free.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .files import fsync_path, read_json, write_json

MANIFEST = "manifest.json"
CHUNK = 8 * 1024 * 1024
_MEMO: dict[tuple, str] = {}


def _identity(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), remembered per process while the file is unchanged."""
    path = Path(path)
    key = _identity(path)
    if key not in _MEMO:
        digest = hashlib.sha256()
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                digest.update(view[:n])
        _MEMO[key] = digest.hexdigest()
    return _MEMO[key]


def file_record(path: str | Path) -> dict[str, Any]:
    """``{"bytes": size, "sha256": hex}`` of a file."""
    path = Path(path)
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def check_file(path: str | Path, record: dict[str, Any] | None) -> str | None:
    """What is wrong with ``path`` compared to its ``record``, as a phrase; ``None`` when it matches."""
    path = Path(path)
    if not isinstance(record, dict) or "sha256" not in record or "bytes" not in record:
        return f"{path.name} has no recorded hash"
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    if size != record["bytes"]:
        return f"{path.name} is truncated or altered ({size} bytes, expected {record['bytes']})"
    if sha256_file(path) != record["sha256"]:
        return f"{path.name} does not match its recorded SHA-256 (corrupted or modified on disk)"
    return None


def write_manifest(folder: str | Path, names: list[str], extra: dict[str, Any] | None = None) -> dict:
    """Flush ``names`` (files in ``folder``) to disk and write ``folder/manifest.json`` with their records.

    Returns:
        The manifest written.
    """
    folder = Path(folder)
    for name in names:
        fsync_path(folder / name)
    manifest = {**(extra or {}), "files": {name: file_record(folder / name) for name in names}}
    write_json(folder / MANIFEST, manifest)
    fsync_path(folder)
    return manifest


def read_manifest(folder: str | Path) -> dict | None:
    """``folder/manifest.json`` or ``None`` when missing or unreadable."""
    try:
        manifest = read_json(Path(folder) / MANIFEST, "manifest")
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) else None


def verify_folder(folder: str | Path, names: list[str]) -> tuple[dict | None, str | None]:
    """Check ``names`` in ``folder`` against its manifest.

    Returns:
        ``(manifest, None)`` when every file matches, else ``(manifest or None, "what is wrong")``.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return None, f"{MANIFEST} is missing or unreadable (an interrupted write)"
    for name in names:
        problem = check_file(folder / name, manifest["files"].get(name))
        if problem:
            return manifest, problem
    return manifest, None


def forget(path: str | Path) -> None:
    """Drop the remembered hash of ``path`` (tests that rewrite a file within one mtime tick)."""
    path = Path(path)
    for key in [k for k in _MEMO if k[0] == str(path.resolve())]:
        del _MEMO[key]


__all__ = ["MANIFEST", "sha256_file", "file_record", "check_file", "write_manifest", "read_manifest",
           "verify_folder", "forget"]
