"""The README's Python example runs as printed, on a shorter schedule (two steps, one class)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHORT = 'presets.get("demo").with_overrides({"train.iterations": 2, "data.classes": ["coffee"]})'


def readme_python() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```$", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    code = readme_python()
    assert 'presets.get("demo")' in code
    monkeypatch.chdir(tmp_path)  # its run directory is relative: runs/demo
    exec(compile(code.replace('presets.get("demo")', SHORT), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    decisions = [line for line in out if line.endswith((" True", " False"))]
    assert len(decisions) == 4  # coffee: the good image and one of each of its three defect types
    assert (tmp_path / "runs" / "demo" / "thresholds.json").is_file()
