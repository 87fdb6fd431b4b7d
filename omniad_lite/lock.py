"""A lock on a run directory, so that two processes never write the same run, and process liveness checks.

:class:`RunLock` is held for the life of a training run or an evaluation that writes into a run directory.
It is an exclusive ``flock`` on ``<run>/.lock``; the file also records who holds it (PID, host, what, since
when), so a second writer is refused with one line naming the holder. The kernel drops a ``flock`` when its
process dies (``kill -9`` included), so a lock left by a dead process is never in the way: the next writer
takes it over and says so. On a filesystem without ``flock`` support the recorded PID is checked instead
(same host: the process must be alive).

Release unlinks the file while still holding the lock; an acquirer therefore checks, after locking, that
the file it locked is still the one at the path (otherwise it locked a file that was just released and
retries). Torch-free.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

from .errors import OmniADError, RecoveryWarning, warn

HOST = socket.gethostname() or "localhost"
ACQUIRE_TRIES = 5  # retries when the lock file is replaced between open and flock

try:
    import fcntl
except ImportError:  # Windows: only the recorded-PID check is available
    fcntl = None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as alive until it is reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class RunInUseError(OmniADError, RuntimeError):
    """Another live process holds the lock of a run directory."""


def describe(holder: dict) -> str:
    """``"train PID 123 on host box (since 2025-01-01 10:00:00)"`` from a lock record."""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"{holder.get('purpose', 'a writer')} PID {holder.get('pid')} on host {holder.get('host')} (since {since})"


def _read_record(fd: int) -> dict | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        record = json.loads(raw.decode()) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _flock(fd: int) -> bool | None:
    """Try an exclusive non-blocking ``flock``: True taken, False held by another, None unsupported."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None  # ENOLCK, EOPNOTSUPP, ...: no lock support on this filesystem


class RunLock:
    """An exclusive lock on ``folder`` (the file ``folder/name``), usable as a context manager.

    Args:
        folder: the run directory (created if missing; removed again on release when it was created here
            and is still empty).
        name: the lock file's name (:attr:`omniad_lite.run.RunDir.LOCK`).
        purpose: what the holder does (``"train"``, ``"eval"``), shown to a refused second writer.
        fix: the advice given to a refused writer.
    """

    def __init__(self, folder: str | os.PathLike, name: str = ".lock", purpose: str = "train",
                 fix: str = "wait for it to finish or stop it (then --overwrite replaces its run), or choose "
                            "another --out") -> None:
        self.folder, self.path, self.purpose, self.fix = Path(folder), Path(folder) / name, purpose, fix
        self.fd: int | None = None
        self.taken_over: dict | None = None  # the record of a dead holder whose lock was taken over
        self._created_folder = False

    def acquire(self) -> "RunLock":
        """Take the lock; raise :class:`RunInUseError` (one line naming the holder and the fix) if held."""
        self._created_folder = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(ACQUIRE_TRIES):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if self._try(fd):
                    self.fd = fd
                    return self
            except BaseException:
                os.close(fd)
                self._remove_created_folder()
                raise
            os.close(fd)
        raise RunInUseError(f"could not lock {self.path}: it keeps being replaced by another process; retry")

    def _try(self, fd: int) -> bool:
        """Lock ``fd`` and write our record; False when the file at the path changed under us (retry)."""
        locked = _flock(fd)
        holder = _read_record(fd)
        if locked is False or (locked is None and holder and _live_elsewhere(holder)):
            gone = "" if locked is False else f" (if that process is gone, delete {self.path})"
            raise RunInUseError(f"{self.folder} is in use by {describe(holder or {})}; {self.fix}{gone}")
        try:
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                return False
        except FileNotFoundError:
            return False
        if holder and holder.get("pid") != os.getpid():
            self.taken_over = holder
            warn(f"took over the lock of {describe(holder)} on {self.folder}: that process has ended",
                 RecoveryWarning)
        record = json.dumps({"pid": os.getpid(), "host": HOST, "purpose": self.purpose, "since": time.time()})
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, record.encode() + b"\n")
        os.fsync(fd)
        return True

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self.fd is None:
            return
        try:
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)  # closing drops the flock
            self.fd = None
        self._remove_created_folder()

    def _remove_created_folder(self) -> None:
        if self._created_folder:
            try:
                self.folder.rmdir()  # only when still empty: nothing was written
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _live_elsewhere(holder: dict) -> bool:
    """Without flock: a holder on this host is live while its PID runs; on another host, assume live."""
    if holder.get("pid") == os.getpid() and holder.get("host") == HOST:
        return False
    if holder.get("host") == HOST:
        return pid_alive(int(holder.get("pid") or 0))
    return True
