"""Running the notebooks on Google Colab (or any single-GPU runtime): what the generated notebook cells call.

- :func:`runtime_report` (:mod:`.runtime`): the device, and the paper recipe's training time on it from a short
  measured warm-up; on a CPU, how to switch Colab to a GPU.
- :func:`use_drive` (:mod:`.drive`): mount Google Drive and keep outputs and caches there, so that after a
  runtime disconnect running the notebook again resumes the run (``train(..., resume="auto")``).
- :func:`dataset_from_archive` (:mod:`.data`): the official MVTec-AD / VisA archive (e.g. on Drive) →
  extracted once to local disk and checked → ``data_root``.
- :func:`repository_url` (:mod:`.project`): the repository named in ``pyproject.toml``.

Nothing here imports ``google.colab`` at import time: every function also runs outside Colab (tests fake it).
"""
from __future__ import annotations

from .data import dataset_from_archive, local_data_dir
from .drive import DRIVE_FOLDER, on_colab, use_drive
from .project import repository_url
from .runtime import RuntimeReport, runtime_report

__all__ = ["DRIVE_FOLDER", "RuntimeReport", "dataset_from_archive", "local_data_dir", "on_colab", "repository_url",
           "runtime_report", "use_drive"]
