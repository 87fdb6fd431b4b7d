"""Writing files so that a crash, a full disk or a second process never leaves a half-written file in place.

- :func:`atomic_write`: the content goes to a temporary file in the same folder, is flushed to disk
  (``fsync``) and renamed over the target (``os.replace`` is atomic on POSIX), so readers see either the old
  file or the new one. The file gets mode ``0o666`` minus the process umask (``0644`` under the usual umask
  022), like any file a program creates, so teammates and a Jupyter server can read the run — also when the
  writer (safetensors) creates its file ``0600`` (:func:`set_default_mode`).
- :func:`temp_path` names every temporary file or folder the kit creates after its writer (PID and host);
  :func:`remove_stale_temps` deletes those whose writer is gone (killed mid-write), so interrupted cache
  builds do not accumulate.
- :func:`ensure_free` and :func:`reserve` allocate the blocks of a file up front (``posix_fallocate``): a
  memory-mapped file written on a full disk would otherwise kill the process with SIGBUS; here it raises
  :class:`NoSpaceError`, one line naming the folder and the megabytes needed.

Torch-free.
"""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .errors import InputError, OmniADError
from .lock import HOST, pid_alive

MB = 1024 * 1024
STALE_TEMP_AGE_S = 24 * 3600  # a temporary file of another host is considered abandoned after a day
_SAFE_HOST = re.sub(r"[^A-Za-z0-9.]", "_", HOST)
# .<name>.tmp-<pid>-<8 hex>-<host>   (ours)   and   .<name>.tmp<pid>   (an older naming, still cleaned up)
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}-(?P<host>[A-Za-z0-9._]+)$")
_LEGACY_TEMP = re.compile(r"^\.?(?P<name>.+)\.tmp(?P<pid>\d+)$")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (from ``/proc/self/status`` where available: reading it changes nothing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # elsewhere the only way to read it is to set it (briefly)
        old = os.umask(0o022)
        os.umask(old)
    return old


def set_default_mode(path: str | Path) -> None:
    """Give a file the mode a plain ``open(path, "w")`` would: ``0o666`` minus the umask."""
    os.chmod(path, 0o666 & ~current_umask())


class NoSpaceError(OmniADError, OSError):
    """Not enough free disk space for a file the kit is about to write (the message names folder and size)."""


def temp_path(target: str | Path) -> Path:
    """A fresh temporary path beside ``target``, naming this process: ``.<name>.tmp-<pid>-<rand>-<host>``."""
    target = Path(target)
    return target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}-{_SAFE_HOST}"


def is_temp(name: str) -> bool:
    """Whether a file name is one of the kit's temporary names."""
    return bool(_TEMP.match(name))


def _abandoned(path: Path) -> bool:
    m = _TEMP.match(path.name)
    host = m["host"] if m else _SAFE_HOST
    if m is None:
        m = _LEGACY_TEMP.match(path.name)
    if m is None:
        return False
    if host == _SAFE_HOST:
        return not pid_alive(int(m["pid"]))
    try:
        return time.time() - path.lstat().st_mtime > STALE_TEMP_AGE_S
    except FileNotFoundError:
        return False


def remove(path: Path) -> None:
    """Delete a file or a folder tree; a path that is already gone is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def discard(folder: Path) -> None:
    """Delete a folder so that no reader ever sees it half-deleted: renamed to a temporary name, then removed."""
    aside = temp_path(folder)
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return
    remove(aside)


def remove_stale_temps(folder: str | Path, *, everyone: bool = False, legacy: bool = False) -> list[Path]:
    """Delete the temporary files/folders in ``folder`` whose writer has ended.

    Args:
        folder: where to look (not recursive).
        everyone: delete every temporary entry, also those of live processes (the caller holds a lock that
            guarantees no one else writes there).
        legacy: also the ``<name>.tmp<pid>`` names (the older naming) whose process has ended (cache
            folders only: a user's own file could look like that).

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        ours = is_temp(entry.name)
        if (ours and everyone) or ((ours or (legacy and _LEGACY_TEMP.match(entry.name))) and _abandoned(entry)):
            remove(entry)
            removed.append(entry)
    return removed


def fsync_path(path: str | Path) -> None:
    """Flush a file's (or a folder's entries') data to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write_fn: Callable[[str], Any]) -> None:
    """Write ``path`` through ``write_fn(tmp_path)`` into a temporary file, then rename it into place.

    Args:
        path: the target file (its folder is created).
        write_fn: writes the content to the temporary path it is given (the file exists, empty, with the
            process's default permissions).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
    try:
        write_fn(str(tmp))
        set_default_mode(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{what} {path} is not valid JSON ({e}); restore or delete it") from None


def no_space_message(folder: Path, needed: int, what: str, hint: str) -> str:
    """``no space left on <folder> for <what> (needs N MiB, M MiB free); <hint>``."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = 0
    return (f"no space left on {folder} for {what} (needs {needed / MB:.1f} MiB, {free / MB:.1f} MiB free); "
            f"{hint}")


def ensure_free(folder: str | Path, needed: int, what: str, hint: str) -> None:
    """Raise :class:`NoSpaceError` when ``folder``'s disk has less than ``needed`` bytes free."""
    folder = Path(folder)
    if shutil.disk_usage(folder).free < needed:
        raise NoSpaceError(no_space_message(folder, needed, what, hint))


def reserve(path: str | Path, what: str, hint: str) -> None:
    """Allocate every block of the (possibly sparse) file ``path`` now, so writes through a memmap can't fail.

    Raises:
        NoSpaceError: the disk is full (one line naming the folder, the size needed and ``hint``).
    """
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "r+b") as f:
            if hasattr(os, "posix_fallocate"):
                try:
                    os.posix_fallocate(f.fileno(), 0, size)
                    return
                except OSError as e:
                    if e.errno in _NO_SPACE:
                        raise
            _fill_holes(f, size)  # no fallocate here (macOS, some network filesystems): write the blocks
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise NoSpaceError(no_space_message(path.parent, size, what, hint)) from None
        raise


def _fill_holes(f, size: int, chunk: int = 16 * MB) -> None:
    """Write every byte of a file once (read, write back) so its blocks are allocated; then flush."""
    pos = 0
    while pos < size:
        f.seek(pos)
        data = f.read(min(chunk, size - pos))
        f.seek(pos)
        f.write(data)
        pos += len(data)
    f.flush()
    os.fsync(f.fileno())
