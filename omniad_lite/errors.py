"""The kit's exceptions and warnings: what it raises when it cannot go on, what it says when it can.

Exceptions share one root, :class:`OmniADError`, and also subclass the built-in type that fits, so
``except ValueError`` keeps working::

    OmniADError
    ├── InputError (ValueError)        an argument, setting or file content the kit cannot use
    │   ├── ConfigError                a config value, preset, override or notebook parameter
    │   └── DataError                  a dataset layout, image or mask
    ├── RunStateError (RuntimeError)   a run directory, checkpoint or cache is damaged, or training diverged
    ├── ImageReadError (RuntimeError)  an image file cannot be decoded
    ├── SetupError (RuntimeError)      the machine lacks something: a GPU, weight files, Google Colab
    ├── MissingDependencyError (ImportError)   an optional extra is not installed
    └── (RunInUseError in :mod:`omniad_lite.lock`, NoSpaceError in :mod:`omniad_lite.files`)

Every message names the file or value and the fix, on one line; ``omniad-lite`` prints exactly that line
for these and for ``OSError`` (missing files, permissions), and the type plus a ``--debug`` hint for anything
else (a bug).

Notes that a user may want to silence or turn into errors go through :mod:`warnings` with the classes
below (``warnings.simplefilter("ignore", OmniADWarning)``, ``python -W error::omniad_lite.errors.OmniADWarning``).
:func:`warn` reports them at the kit's own line as ``omniad_lite.module:line: Category: text``.
"""
from __future__ import annotations

import sys
import warnings


class OmniADError(Exception):
    """Root of every exception the kit raises on purpose."""


class InputError(OmniADError, ValueError):
    """An argument, setting or file content the kit cannot use."""


class ConfigError(InputError):
    """A config value, preset name, override or notebook parameter is invalid."""


class DataError(InputError):
    """A dataset, image or mask cannot be used as it is."""


class RunStateError(OmniADError, RuntimeError):
    """A run directory, checkpoint or cache is damaged or incomplete, or training cannot go on."""


class ImageReadError(OmniADError, RuntimeError):
    """An image or mask file cannot be read or decoded."""


class SetupError(OmniADError, RuntimeError):
    """The machine lacks something the request needs (a GPU, weight files, Google Colab)."""


class MissingDependencyError(OmniADError, ImportError):
    """An optional dependency (an extra of the package) is not installed."""


class OmniADWarning(UserWarning):
    """Root of the kit's warnings: notes the user may filter."""


class DataWarning(OmniADWarning):
    """Something about the data deserves a look (skipped files, images without masks)."""


class MetricWarning(OmniADWarning):
    """A metric is undefined (NaN) for some class, and why."""


class ThresholdWarning(OmniADWarning):
    """A decision threshold rests on few images or fell back to another method."""


class RecoveryWarning(OmniADWarning):
    """A damaged cache or checkpoint was set aside and the work redone or resumed from an earlier point."""


def warn(message: str, category: type[OmniADWarning] = OmniADWarning) -> None:
    """Issue a kit warning at the caller's line, shown as ``omniad_lite.module:line: Category: message``.

    The module's dotted name stands for its file, so no absolute path reaches an output; the notebooks show
    these warnings as wrapped ``note`` lines (:func:`omniad_lite.notebook_params.show_notes`).

    Args:
        message: one sentence naming what and why.
        category: an :class:`OmniADWarning` subclass (what a user filters on).
    """
    frame = sys._getframe(1)
    module = frame.f_globals.get("__name__", "omniad_lite")
    warnings.warn_explicit(message, category, module, frame.f_lineno, module=module,
                           registry=frame.f_globals.setdefault("__warningregistry__", {}))
