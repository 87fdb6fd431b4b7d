"""A dataset on Colab: the official archive the user put on Google Drive → extracted once to local disk.

Reading tens of thousands of small images through the Drive mount is slow; the local disk is fast but
wiped with the runtime. So the archive stays on Drive and is extracted to local disk
(:func:`local_data_dir`) by :func:`omniad_lite.data.prepare.prepare_dataset`, which also checks the layout
with the kit's loaders and every image/mask header. ``data_scripts/prepare_*.py ARCHIVE --dest DIR`` do
the same from a shell.
"""
from __future__ import annotations

from pathlib import Path

from .. import presets
from ..data.prepare import DATASET_ARCHIVES, DATASET_NAMES, DATASET_PAGES, is_archive, prepare_dataset

COLAB_CONTENT = Path("/content")  # Colab's working folder, on the runtime's local disk


def local_data_dir() -> Path:
    """Where archives are extracted: ``/content/data`` on Colab, else ``~/omniad_lite_data``."""
    return COLAB_CONTENT / "data" if COLAB_CONTENT.is_dir() else Path.home() / "omniad_lite_data"


def dataset_format(preset_or_format: str) -> str:
    """``"mvtec"``, ``"visa"``, ``"realiad"`` or ``"mvtec_ad2"`` from a preset name (``"paper-visa"``) or a format.

    A preset that reads any layout (``data.format="auto"``, e.g. ``demo``) takes an MVTec-AD-layout archive,
    the layout of the demo data itself; pass ``"visa"`` or ``"realiad"`` for the others.
    """
    if preset_or_format in DATASET_NAMES:
        return preset_or_format
    fmt = presets.get(preset_or_format).data.format  # raises for an unknown preset, listing the presets
    if fmt == "auto":
        return "mvtec"
    if fmt not in DATASET_NAMES:
        raise ValueError(f"preset {preset_or_format!r} reads format {fmt!r}; pass the dataset's format, one of "
                         f"{sorted(DATASET_NAMES)}")
    return fmt


def dataset_from_archive(archive: str | Path, preset_or_format: str, dest: str | Path | None = None) -> str:
    """Extract an official dataset archive to local disk (once) and check it; return the ``data_root``.

    Args:
        archive: the downloaded archive (``.tar.xz``, ``.tar``, ``.zip``; e.g. on Drive) or an extracted folder.
        preset_or_format: the preset that will train on it (``"paper-mvtec"``) or its format (``"mvtec"``).
        dest: the extraction folder (default ``local_data_dir() / <format>``); a marker in it makes later
            calls skip the extraction.

    Returns:
        The dataset root, as a string for the notebook's ``data_root`` parameter.

    Raises:
        FileNotFoundError: ``archive`` does not exist (the message names the file to download and where).
        ValueError: not the dataset's layout, or images that cannot be read / masks of the wrong size.
    """
    fmt = dataset_format(preset_or_format)
    archive = Path(archive).expanduser()
    if not archive.exists():
        expected = DATASET_ARCHIVES.get(fmt, "the extracted dataset folder")
        raise FileNotFoundError(f"data_archive={str(archive)!r} does not exist: download {expected} "
                                f"({DATASET_NAMES[fmt]}) from {DATASET_PAGES[fmt]}, put it on your Google Drive "
                                f"and pass its path, e.g. '/content/drive/MyDrive/{expected}'")
    if dest is None and is_archive(archive):
        dest = local_data_dir() / fmt
    report = prepare_dataset(archive, fmt, dest=dest)
    if report["problems"]:
        raise ValueError(f"{archive}: {len(report['problems'])} image(s) cannot be used, e.g. "
                         f"{report['problems'][0]}; replace the archive with a complete download")
    return str(report["root"])
