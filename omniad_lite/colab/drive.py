"""Google Drive on Colab: keep runs and caches where a runtime disconnect cannot delete them.

Colab's local disk (``/content``) is wiped when the runtime is recycled; Google Drive, mounted with
``google.colab.drive.mount``, is not. :func:`use_drive` mounts it and moves a notebook's ``output_dir``
and the kit's caches (decoded images, teacher features, the demo dataset) into a folder on it, so that
running the notebook again after a disconnect finds the checkpoint (``resume="auto"``) and the caches.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..data.cache import CACHE_ENV
from ..errors import ConfigError, SetupError

DRIVE_FOLDER = "/content/drive/MyDrive/omniad_lite"
DRIVE_ROOTS = ("MyDrive", "Shareddrives")  # the folders Colab shows inside the mount point
CACHE_SUBDIR = "cache"


def on_colab() -> bool:
    """True inside a Google Colab runtime (its kernel imports ``google.colab`` at start-up)."""
    return "google.colab" in sys.modules


def mount_point(folder: str | Path) -> Path:
    """The Drive mount point a folder lies in (the parent of its ``MyDrive`` or ``Shareddrives`` part)."""
    parts = Path(folder).expanduser().parts
    for i, part in enumerate(parts):
        if part in DRIVE_ROOTS and i > 0:
            return Path(*parts[:i])
    raise ConfigError(f"drive_folder={str(folder)!r} is not inside Google Drive: use a folder under "
                     f"/content/drive/MyDrive, e.g. {DRIVE_FOLDER!r}")


def use_drive(output_dir: str | Path, folder: str | Path = DRIVE_FOLDER) -> Path:
    """Mount Google Drive (once) and keep ``output_dir`` and the caches in ``folder`` on it.

    Args:
        output_dir: the notebook's output folder; a relative one goes inside ``folder``, an absolute one
            is kept as given.
        folder: a folder on Drive (``/content/drive/MyDrive/...``), created when missing.

    Returns:
        The output folder to use. The caches go to ``folder/cache`` (``$OMNIAD_LITE_CACHE`` is set for this
        process, so :func:`omniad_lite.data.default_cache_dir` points there).

    Raises:
        RuntimeError: not on Colab (``google.colab`` cannot be imported).
        ValueError: ``folder`` is not inside a Drive mount.
    """
    folder = Path(folder).expanduser()
    mount = mount_point(folder)
    try:
        from google.colab import drive  # lazy: exists only on Colab
    except ImportError as e:
        raise SetupError("drive=True needs Google Colab (google.colab cannot be imported here); set "
                           "drive=False and choose output_dir yourself") from e
    if not any((mount / root).is_dir() for root in DRIVE_ROOTS):
        drive.mount(str(mount))  # on Colab: asks once for permission to access your Drive
    if not any((mount / root).is_dir() for root in DRIVE_ROOTS):
        raise SetupError(f"Google Drive did not appear at {mount} after mounting; mount it from the Files "
                           f"panel and run again")
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / CACHE_SUBDIR
    os.environ[CACHE_ENV] = str(cache)
    out = Path(output_dir).expanduser()
    out = out if out.is_absolute() else folder / out
    print(f"Google Drive: outputs in {out}, caches in {cache} (kept across runtime disconnects)")
    return out
