"""Notebook parameters: papermill's ``parameters`` cell → a validated :class:`ExperimentConfig`, or one clear line.

Notebook parameters are plain values (``-p epochs 2``, a YAML file with ``-f``); this module maps them
onto config keys and lets :mod:`omniad_lite.config` do the checking, so a wrong type or an unknown preset
fails in the notebook's first cells instead of deep inside training. Errors are
:class:`NotebookParameterError`: IPython prints them as one line (no traceback), naming the *parameter*
as the notebook user wrote it, so papermill's error starts with the message. :func:`check_injected_parameters`
catches a mistyped papermill parameter (``-p epoch 5``), which papermill itself only logs and the notebook
would otherwise silently ignore. Ours (the released code, github easyoo/Omni-AD, has no notebooks).
"""
from __future__ import annotations

import ast
import difflib
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, Sequence

from . import presets
from .config import ExperimentConfig
from .errors import ConfigError, OmniADWarning

NOTE_WIDTH = 100  # notebook outputs stay within this many columns
PAPERMILL_COMMENT = "# Parameters"  # first line of the cell papermill injects after the parameters cell


class NotebookParameterError(ConfigError):
    """A notebook parameter is wrong; shown in a notebook as one line, ``NotebookParameterError: <message>``."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for an exception's own short traceback
        return [f"{type(self).__name__}: {self}"]


# notebook parameter → config key; ``None`` values leave the preset's value unchanged
PARAM_KEYS = {
    "data_root": "data.root",
    "classes": "data.classes",
    "image_size": "model.image_size",
    "cache_images": "data.cache_images",
    "epochs": "train.epochs",
    "iterations": "train.iterations",
    "batch_size": "train.batch_size",
    "device": "train.device",
    "precision": "train.precision",
    "cache_teacher_features": "train.cache_teacher_features",
    "seed": "train.seed",
}


def experiment_from_params(preset: str, overrides: Sequence[str] | dict[str, Any] = (), **params) -> ExperimentConfig:
    """The preset ``preset`` with the notebook's parameters and free-form overrides applied.

    Args:
        preset: a name from :func:`omniad_lite.presets.names`.
        overrides: extra ``"section.key=value"`` strings (or a dict) for any config key, e.g.
            ``["model.ffn=resampled"]``; applied after ``params``.
        **params: notebook parameters named as in :data:`PARAM_KEYS` (``epochs=2``, ``device="cpu"``, ...);
            ``None`` keeps the preset's value.

    Raises:
        NotebookParameterError: (a ``ValueError``) unknown preset or parameter name, a value of the wrong
            type, a ``data_root`` that is not a folder; the message names the notebook parameter.
    """
    check_preset(preset)
    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise NotebookParameterError(f"unknown notebook parameter(s) {unknown}; known: {sorted(PARAM_KEYS)}")
    if params.get("data_root") is not None:
        params["data_root"] = str(check_folder("data_root", params["data_root"]))
    if params.get("classes") is not None and not (
            isinstance(params["classes"], list) and all(isinstance(c, str) for c in params["classes"])):
        raise NotebookParameterError(f"parameter classes={params['classes']!r} must be a list of class names, "
                                     "e.g. ['bottle', 'cable']")
    cfg = presets.get(preset)
    for name, value in params.items():  # one at a time, so an error names the parameter
        if value is not None:
            try:
                cfg = cfg.with_overrides({PARAM_KEYS[name]: value})
            except ValueError as e:
                raise NotebookParameterError(f"parameter {name}={value!r} is not valid: {e}") from None
    if not overrides:
        return cfg
    if not isinstance(overrides, dict) and (isinstance(overrides, str)
                                            or not all(isinstance(o, str) for o in overrides)):
        raise NotebookParameterError(f"parameter overrides={overrides!r} must be a list of 'section.key=value' "
                                     "strings, e.g. ['model.ffn=resampled']")
    try:
        return cfg.with_overrides(overrides if isinstance(overrides, dict) else list(overrides))
    except ValueError as e:
        raise NotebookParameterError(f"parameter overrides: {e}") from None


def check_preset(preset: Any) -> str:
    """``preset`` if it names a preset, else :class:`NotebookParameterError` with the closest name."""
    if not isinstance(preset, str) or preset not in presets.names():
        raise NotebookParameterError(f"parameter preset={preset!r}: unknown preset {preset!r}"
                                     f"{_did_you_mean(str(preset), presets.names())}; "
                                     f"presets: {', '.join(presets.names())}")
    return preset


def check_param(name: str, value: Any, kind: type | tuple[type, ...], *, positive: bool = False) -> Any:
    """Raise :class:`NotebookParameterError` naming the parameter when ``value`` is not of ``kind``.

    Args:
        name: the parameter's name, used in the message.
        value: its value.
        kind: accepted type(s); bools are not ints.
        positive: also require ``value > 0``.

    Returns:
        ``value`` unchanged.
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok or (positive and not value > 0):
        names = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
        raise NotebookParameterError(f"parameter {name}={value!r} must be {'a positive ' if positive else ''}"
                                     f"{names}")
    return value


def check_folder(name: str, value: Any) -> Path:
    """``value`` as a ``Path`` to an existing folder, else :class:`NotebookParameterError` naming ``name``."""
    check_param(name, value, (str, Path))
    path = Path(value).expanduser()
    if not path.is_dir():
        raise NotebookParameterError(f"parameter {name}={str(value)!r}: no such folder; set {name} to an "
                                     "existing folder" + (" (None: the offline demo data)" if name == "data_root"
                                                          else ""))
    return path


def output_path(output_dir: str | Path) -> Path:
    """``output_dir`` as a created ``Path`` (raises :class:`NotebookParameterError` for a non-string)."""
    check_param("output_dir", output_dir, (str, Path))
    path = Path(output_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_injected_parameters(history: Sequence[str] | None = None) -> list[str]:
    """Fail when papermill injected a parameter that the notebook's parameters cell does not define.

    papermill writes ``-p NAME VALUE`` into a cell (``# Parameters`` + assignments) placed right after the
    cell tagged ``parameters``, and only logs a warning for a name that cell does not define, so a typo
    (``-p epoch 5``) would run the notebook with its defaults. Call this in the cell after the parameters:
    it reads the cells executed so far (IPython's ``In``) and compares the names assigned in the injected
    cell with those assigned in the cell executed before it.

    Args:
        history: cell sources in execution order (default: IPython's ``In``; nothing to check outside IPython).

    Returns:
        The injected parameter names (empty when nothing was injected).

    Raises:
        NotebookParameterError: an injected name is not a parameter; the message suggests the closest
            one and lists the notebook's parameters.
    """
    if history is None:
        shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
        history = list(shell.user_ns.get("In", [])) if shell is not None else []
    found = [i for i, src in enumerate(history) if i > 0 and _is_injected(src)]
    if not found:
        return []
    injected, declared = _assigned(history[found[-1]]), _assigned(history[found[-1] - 1])
    unknown = [name for name in injected if name not in declared]
    if unknown:
        hints = "; ".join(f"{name!r} is not a parameter of this notebook{_did_you_mean(name, declared)}"
                          for name in unknown)
        raise NotebookParameterError(f"{hints}. Its parameters: {', '.join(declared)}")
    return injected


def notebook_parameters(history: Sequence[str] | None = None, namespace: dict[str, Any] | None = None) -> dict:
    """The notebook's parameters and their values as run (defaults and papermill's ``-p`` values), for
    ``results.json``. Call it right after :func:`check_injected_parameters`, before any is reassigned.

    Args:
        history: cell sources in execution order (default: IPython's ``In``).
        namespace: where the values live (default: IPython's user namespace).

    Returns:
        ``{name: value}`` for every name the parameters cell (the first cell of plain assignments) assigns,
        in its order; empty outside IPython.
    """
    if history is None or namespace is None:
        shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
        if shell is None:
            return {}
        history = list(shell.user_ns.get("In", [])) if history is None else history
        namespace = shell.user_ns if namespace is None else namespace
    cells = [_assigned(src) for src in history[1:]]
    names = next((c for c in cells if c), [])
    return {n: namespace[n] for n in names if n in namespace}


def show_notes(width: int = NOTE_WIDTH) -> None:
    """Show the kit's warnings in this notebook as ``note (Category): text`` lines on stdout, wrapped to
    ``width`` columns (a notebook output stays readable and free of file paths); other warnings, and the
    filters that decide which warnings are shown at all, are left as they are.

    Call it once, in the notebook's first code cell after the parameters.
    """
    previous = warnings.showwarning
    if getattr(previous, "omniad_notes", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, OmniADWarning):
            return previous(message, category, filename, lineno, file, line)
        print(textwrap.fill(f"note ({category.__name__}): {message}", width=width, subsequent_indent="  ",
                            break_on_hyphens=False, break_long_words=False))

    show.omniad_notes = True
    warnings.showwarning = show


def _is_injected(source: str) -> bool:
    """True for the cell papermill injects: its comment line, then only assignments."""
    return source.lstrip().startswith(PAPERMILL_COMMENT) and bool(_assigned(source))


def _assigned(source: str) -> list[str]:
    """The names a cell of plain assignments assigns, in order; empty if the cell holds anything else."""
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython magics, or not a parameters cell
        return []
    names: list[str] = []
    for node in body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            names += [t.id for t in node.targets if t.id not in names]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names += [node.target.id] if node.target.id not in names else []
        else:
            return []
    return names


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
