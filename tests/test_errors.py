"""The kit's exceptions and warnings: one root each, the built-in types they extend, filtering by class, and
the CLI's rule (one line for the kit's errors and OS errors; type and the --debug hint for anything else)."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from omniad_lite import cli, presets
from omniad_lite.errors import (
    ConfigError,
    DataError,
    InputError,
    MetricWarning,
    OmniADError,
    OmniADWarning,
    RunStateError,
    ThresholdWarning,
    warn,
)
from omniad_lite.lock import RunInUseError

ROOT = Path(__file__).resolve().parents[1]


def test_exceptions_share_one_root_and_keep_their_builtin_type():
    assert issubclass(ConfigError, InputError) and issubclass(DataError, InputError)
    assert issubclass(InputError, ValueError) and issubclass(RunStateError, RuntimeError)
    assert all(issubclass(c, OmniADError) for c in (ConfigError, DataError, RunStateError, RunInUseError))
    with pytest.raises(ValueError, match="unknown config key"):  # existing `except ValueError` still catches
        presets.get("demo").with_overrides({"train.epoch": 2})
    with pytest.raises(OmniADError):
        presets.get("demo").with_overrides({"train.epoch": 2})


def test_the_kits_notes_are_warnings_a_user_can_filter():
    with pytest.warns(ThresholdWarning, match="few images"):
        warn("few images", ThresholdWarning)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ThresholdWarning)  # one kind silenced, the others still shown
        warn("silenced", ThresholdWarning)
        warn("shown", OmniADWarning)
    assert [str(w.message) for w in seen] == ["shown"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", OmniADWarning)  # every kit note becomes an error
        with pytest.raises(ThresholdWarning):
            warn("now an error", ThresholdWarning)


def test_python_dash_w_turns_a_kit_note_into_an_error():
    code = "from omniad_lite.errors import warn, MetricWarning; warn('undefined metric', MetricWarning); print('ran')"
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ok.returncode == 0 and "ran" in ok.stdout
    assert "omniad_lite.errors" not in ok.stderr and "MetricWarning: undefined metric" in ok.stderr
    # Python resolves a -W category when it starts, before site-packages are on sys.path (an installed
    # package's class is then "Invalid -W option ignored"): the kit must be importable from PYTHONPATH
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    err = subprocess.run([sys.executable, "-W", "error::omniad_lite.errors.OmniADWarning", "-c", code],
                         capture_output=True, text=True, env=env)
    assert err.returncode != 0 and "ran" not in err.stdout and "MetricWarning: undefined metric" in err.stderr


def test_cli_prints_one_line_for_the_kits_errors_and_the_type_for_a_bug(monkeypatch, capsys):
    def config_error(args):
        raise ConfigError("train.epochs=-1 must be >= 1; pass a positive number")

    def bug(args):
        raise KeyError("step")

    monkeypatch.setitem(cli.COMMANDS, "presets", config_error)
    assert cli.main(["presets"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err == ("omniad-lite presets: error: train.epochs=-1 must be >= 1; pass a positive "
                                       "number\n")
    monkeypatch.setitem(cli.COMMANDS, "presets", bug)
    assert cli.main(["presets"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected KeyError (in cli.py:" in err and "'step'" in err
    assert "--debug" in err
    monkeypatch.setitem(cli.COMMANDS, "presets", lambda args: open("/no/such/file"))
    assert cli.main(["presets"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "No such file or directory" in err and "--debug" not in err


def test_notebooks_show_the_kits_warnings_as_wrapped_notes(monkeypatch, capsys):
    from omniad_lite.notebook_params import NOTE_WIDTH, show_notes

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    show_notes()
    show_notes()  # idempotent: a re-run cell does not stack a second hook
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = warnings.showwarning  # catch_warnings restores it; keep the hook inside
        warn("the thresholds of brick rest on 3 held-out images " * 4, ThresholdWarning)
        warnings.simplefilter("ignore", MetricWarning)
        warn("filtered out", MetricWarning)
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0].startswith("note (ThresholdWarning): the thresholds of brick") and len(lines) > 1
    assert all(len(line) <= NOTE_WIDTH for line in lines) and "filtered out" not in out.out and not out.err
