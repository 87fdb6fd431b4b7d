"""The command line: listing presets and one-line errors (exit code 2) on bad input."""
from __future__ import annotations

import subprocess
import sys

from omniad_lite import presets
from omniad_lite.cli import main


def test_presets_command_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    assert capsys.readouterr().out.split() == presets.names()


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "omniad_lite", "presets"], capture_output=True, text=True,
                         check=True).stdout
    assert "paper-mvtec" in out.split()
