"""data_scripts logic (omniad_lite/data/prepare.py): extraction, counts, validation, meta.json round trip."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from helpers import build_mvtec, build_realiad, build_visa, write_mask

from omniad_lite.data import load_samples
from omniad_lite.data.prepare import prepare_dataset, script_main

REPO = Path(__file__).resolve().parents[1]


def test_mvtec_tar_archive_counts_and_meta(tmp_path: Path) -> None:
    build_mvtec(tmp_path / "src" / "mvtec_anomaly_detection")
    archive = tmp_path / "mvtec_anomaly_detection.tar.xz"
    with tarfile.open(archive, "w:xz") as t:
        t.add(tmp_path / "src" / "mvtec_anomaly_detection", arcname="mvtec_anomaly_detection")
    lines: list[str] = []
    report = prepare_dataset(archive, "mvtec", dest=tmp_path / "out", write_meta_file=True, progress=False,
                             log=lines.append)
    root = report["root"]
    assert root == tmp_path / "out" / "mvtec_anomaly_detection"
    s = report["summary"]
    assert s.loc["grid", "train"] == 3 and s.loc["grid", "test_good"] == 2 and s.loc["grid", "test_anomalous"] == 3
    assert s.loc["grid", "defects"] == "crack, hole" and s.loc["total", "train"] == 9
    assert report["problems"] == [] and report["meta_written"] is True
    # meta.json reads back to the same samples as the tree
    for split in ("train", "test"):
        assert load_samples(root, "meta", split) == load_samples(root, "mvtec", split)
    # idempotent: second run extracts nothing and leaves meta.json unchanged
    lines.clear()
    again = prepare_dataset(archive, "mvtec", dest=tmp_path / "out", write_meta_file=True, progress=False,
                            log=lines.append)
    assert again["meta_written"] is False and any(line.startswith("already extracted") for line in lines)


def test_visa_zip_and_validation_problems(tmp_path: Path) -> None:
    build_visa(tmp_path / "VisA")
    write_mask(tmp_path / "VisA" / "pcb1" / "Data" / "Masks" / "Anomaly" / "001.png", (30, 30), (0, 0, 3, 3))
    archive = tmp_path / "VisA.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in (tmp_path / "VisA").rglob("*"):
            z.write(p, p.relative_to(tmp_path).as_posix())
    report = prepare_dataset(archive, "visa", progress=False, log=lambda line: None)
    assert report["summary"].loc["total", "test_anomalous"] == 4
    assert len(report["problems"]) == 1 and "001.png is 30x30 but its image" in report["problems"][0]


def test_realiad_folder_and_script_exit_codes(tmp_path: Path, capsys) -> None:
    build_realiad(tmp_path / "Real-IAD")
    assert script_main("realiad", [str(tmp_path / "Real-IAD"), "--views", "1"]) == 0
    out = capsys.readouterr().out
    assert "ready: train with --data-root" in out and "total" in out
    assert script_main("realiad", [str(tmp_path / "nowhere")]) == 2
    assert "https://realiad4ad.github.io/Real-IAD/" in capsys.readouterr().err
    assert script_main("visa", [str(tmp_path / "Real-IAD")]) == 2
    assert "expected split_csv/1cls.csv" in capsys.readouterr().err


def test_prepare_script_runs_as_a_file(tmp_path: Path) -> None:
    build_mvtec(tmp_path / "d")
    r = subprocess.run([sys.executable, str(REPO / "data_scripts" / "prepare_mvtec.py"), str(tmp_path / "d"),
                        "--write-meta"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "wrote:" in r.stdout and json.loads((tmp_path / "d" / "meta.json").read_text())["train"]["bottle"]
