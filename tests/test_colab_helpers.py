"""omniad_lite.colab and the generated notebook cells: runtime report, Drive, dataset archives, notebook lookup,
the teacher-cache/AMP choices of the paper presets, and the rendered notebooks (install + runtime cells)."""
from __future__ import annotations

import importlib.util
import sys
import tarfile
import tomllib
import types
from pathlib import Path

import nbformat
import pytest
import timm
import torch

from helpers import tiny_config

from omniad_lite import colab, presets
from omniad_lite.colab import project, runtime
from omniad_lite.data import load_samples
from omniad_lite.data.cache import CACHE_ENV
from omniad_lite.training import teacher_cache
from omniad_lite.training.step import resolve_precision

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "notebooks" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- runtime report -----------------------------------------------------------------------------------------
def test_warm_up_measures_and_estimates(tiny_root, tmp_path, capsys):
    cfg = tiny_config(tiny_root, tmp_path / "cache", batch_size=4, cache_teacher_features="auto")
    report = runtime.RuntimeReport(device="cpu", name="test", torch=torch.__version__, preset="tiny",
                                   train_images=120, epochs=10)
    runtime._warm_up(report, cfg, torch.device("cpu"))
    assert report.images_per_s > 0 and report.batch_size == runtime.CPU_BATCH and report.precision == "fp32"
    assert report.teacher_cache == "memory"  # 120 tiny images are far below a quarter of the machine's RAM
    assert report.estimate_s == pytest.approx(120 * 10 / report.images_per_s)
    line = str(report)
    assert len(report.lines()) == 3 and "Change runtime type" in line and "tiny recipe takes ≈" in line
    assert max(len(row) for row in line.splitlines()) <= 100


@pytest.mark.parametrize("params, message", [
    ({"preset": "paper-mvtc"}, "parameter preset='paper-mvtc': unknown preset 'paper-mvtc' (did you mean 'paper-mvtec'?)"),
    ({"device": "gpu"}, "parameter device='gpu': "),
    ({"preset": "paper-mvtec", "data_root": "no/such/folder"}, "parameter data_root='no/such/folder': no such folder"),
])
def test_runtime_cell_names_a_bad_parameter_in_one_line(params, message):
    """The generated runtime cell runs before the notebook's check cell: it must fail the same way."""
    from omniad_lite.notebook_params import NotebookParameterError

    with pytest.raises(NotebookParameterError) as info:
        colab.runtime_report(**{"device": "cpu", **params}, show=False)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_runtime_report_without_preset_does_no_warm_up(capsys):
    report = colab.runtime_report("cpu")
    assert report.images_per_s is None and report.estimate_s is None
    assert capsys.readouterr().out.startswith("runtime: CPU only")


def test_gpu_report_lines():
    report = runtime.RuntimeReport(device="cuda:0", name="Tesla T4", torch="2.5", cuda="12.4",
                                   memory_bytes=15 * 2**30, preset="paper-mvtec", batch_size=16, precision="fp16",
                                   teacher_cache="memory", cache_bytes=3 * 2**30, images_per_s=36.29,
                                   peak_bytes=9 * 2**30, train_images=3629, epochs=1000)
    text = str(report)
    assert "GPU Tesla T4, 15.0 GiB, CUDA 12.4" in text and "peak 9.0 GiB of 15.0 GiB" in text
    assert "estimated training time: ≈ 27.8 h\n  (3,629 images × 1000 epochs at 36.29 images/s" in text  # 3,629,000 / 36.29 / 3600
    assert max(len(line) for line in text.splitlines()) <= 100  # fits a notebook output


def test_paper_train_image_counts_come_from_the_data_root(tiny_root):
    cfg = presets.get("paper-mvtec")
    assert runtime._train_images(cfg, None) == 3629
    assert runtime._train_images(cfg, str(tiny_root)) == len(load_samples(tiny_root, "mvtec", "train"))
    assert runtime._train_images(presets.get("paper-realiad"), None) is None


# -- GPU defaults of the paper presets: teacher cache and precision -----------------------------------------------
def test_feature_bytes_match_the_real_encoder():
    """The computed cache size per image equals the fp16 bytes of resnet34's real features at 256²."""
    body = timm.create_model("resnet34", pretrained=False, features_only=True, out_indices=(1, 2, 3))
    with torch.no_grad():
        feats = body(torch.zeros(1, 3, 256, 256))
    real = sum(f.to(torch.float16).nbytes for f in feats)
    computed = teacher_cache.feature_bytes_per_image(body.feature_info.channels(), body.feature_info.reduction(), 256)
    assert computed == real == 2 * (64 * 64**2 + 128 * 32**2 + 256 * 16**2) == 917_504
    assert computed * 3629 == 3_329_622_016  # MVTec-AD's train split: 3.10 GiB, quoted in docs/install.md


def test_auto_cache_fits_a_t4_for_mvtec_not_visa(monkeypatch):
    t4 = 15 * 10**9  # about what a T4 (16 GB nominal) offers to torch
    monkeypatch.setattr(teacher_cache, "device_memory_bytes", lambda device: t4)
    cuda = torch.device("cuda")
    assert teacher_cache.resolve_cache_mode("auto", 917_504 * 3629, cuda) == "memory"
    assert teacher_cache.resolve_cache_mode("auto", 917_504 * 8659, cuda) == "off"
    assert teacher_cache.resolve_cache_mode("disk", 10**12, cuda) == "disk"
    for name in ("paper-mvtec", "paper-visa", "paper-realiad"):
        t = presets.get(name).train
        assert (t.batch_size, t.precision, t.cache_teacher_features) == (16, "fp32", "auto")


def test_auto_precision_is_fp16_on_a_t4_and_bf16_from_ampere_fp32_on_cpu(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # T4
    assert resolve_precision("auto", cuda) is torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))  # A100
    assert resolve_precision("auto", cuda) is torch.bfloat16
    assert resolve_precision("auto", torch.device("cpu")) is None


# -- Google Drive -------------------------------------------------------------------------------------------
@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """A ``google.colab`` whose ``drive.mount`` creates ``MyDrive`` under the mount point and records the call."""
    mounts = []

    def mount(mountpoint, force_remount=False):
        mounts.append(mountpoint)
        (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)

    google = types.ModuleType("google")
    google.__path__ = []
    google_colab = types.ModuleType("google.colab")
    google_colab.drive = types.SimpleNamespace(mount=mount)
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)
    monkeypatch.delenv(CACHE_ENV, raising=False)
    return mounts


def test_use_drive_mounts_once_and_moves_outputs_and_caches(fake_colab, tmp_path, monkeypatch):
    folder = tmp_path / "drive" / "MyDrive" / "omniad_lite"
    out = colab.use_drive("runs/03_training", folder)
    assert out == folder / "runs/03_training" and fake_colab == [str(tmp_path / "drive")]
    from omniad_lite.data import default_cache_dir
    assert default_cache_dir() == folder / "cache"
    assert colab.use_drive(tmp_path / "elsewhere", folder) == tmp_path / "elsewhere"  # absolute: kept
    assert len(fake_colab) == 1  # already mounted: not again
    assert colab.on_colab()


def test_use_drive_errors(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", None)  # import fails, as outside Colab
    with pytest.raises(RuntimeError, match="drive=True needs Google Colab"):
        colab.use_drive("runs", tmp_path / "drive" / "MyDrive" / "x")
    with pytest.raises(ValueError, match="not inside Google Drive"):
        colab.use_drive("runs", tmp_path / "somewhere")


# -- dataset archives ---------------------------------------------------------------------------------------
def test_dataset_from_archive_extracts_once_and_checks(tiny_root, tmp_path, capsys):
    archive = tmp_path / "drive" / "mvtec_anomaly_detection.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_root, arcname=".")
    root = colab.dataset_from_archive(archive, "paper-mvtec", dest=tmp_path / "local")
    assert Path(root) == tmp_path / "local"
    assert len(load_samples(root, "mvtec", "train")) == len(load_samples(tiny_root, "mvtec", "train"))
    capsys.readouterr()
    assert colab.dataset_from_archive(archive, "mvtec", dest=tmp_path / "local") == root
    assert "already extracted" in capsys.readouterr().out


def test_dataset_from_archive_names_the_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="mvtec_anomaly_detection.tar.xz .MVTec-AD. from https://www.mvtec"):
        colab.dataset_from_archive(tmp_path / "missing.tar.xz", "paper-mvtec")
    with pytest.raises(FileNotFoundError, match="VisA_20220922.tar"):
        colab.dataset_from_archive(tmp_path / "missing.tar", "visa")
    with pytest.raises(ValueError, match="unknown preset"):
        colab.dataset_from_archive(tmp_path / "x.tar", "paper-mvtek")


# -- repository URL and notebook rendering ------------------------------------------------------------------------
def test_repository_url_comes_from_pyproject():
    assert project.repository_url() == REPOSITORY


def test_rendered_notebooks_install_from_the_repository_and_start_with_the_runtime_cell(tmp_path):
    from IPython.core.inputtransformer2 import TransformerManager

    builder = load_builder()
    sources = sorted((ROOT / "notebooks" / "cells").glob("[0-9][0-9]_*.py"))
    assert len(sources) == 7  # 00 … 06
    for source in sources:
        nb = nbformat.read(builder.build(source, tmp_path), as_version=4)
        text = nbformat.writes(nb)
        assert "YOUR" + "_ORG" not in text and "{REPO}" not in text and "jupyterlab" not in text
        slug = REPOSITORY.removeprefix("https://github.com/")
        assert f"colab.research.google.com/github/{slug}/blob/main/notebooks/{source.stem}.ipynb" in nb.cells[0].source
        assert f'%pip install -q "omniad_lite[colab] @ git+{REPOSITORY}"' in nb.cells[1].source
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        runtime_src = nb.cells[at + 1].source
        assert "colab.runtime_report(" in runtime_src
        assert ("preset" in runtime_src.split("runtime_report(")[1]) == (source.stem[:2] in builder.ESTIMATE)
        for cell in nb.cells:  # every code cell is valid IPython (magics included)
            if cell.cell_type == "code":
                compile(TransformerManager().transform_cell(cell.source), f"{source.stem}:{cell.id}", "exec")
    params = builder.parameter_names(nbformat.read(tmp_path / "03_training.ipynb", as_version=4).cells[2].source)
    assert {"drive", "drive_folder", "resume", "data_archive", "output_dir"} <= params


def test_png_fallback_leaves_an_ipywidgets_7_widget_alone():
    """Colab ships ipywidgets 7, whose widgets have no ``_repr_mimebundle_``: the explorer must not fail there."""
    import matplotlib.pyplot as plt

    from omniad_lite.viz.widgets import add_png_fallback

    class Widget7:  # displays through _ipython_display_, as ipywidgets 7 does
        def _ipython_display_(self):
            pass

    widget, fig = Widget7(), plt.figure()
    add_png_fallback(widget, fig)
    assert not hasattr(widget, "_repr_mimebundle_") and not plt.fignum_exists(fig.number)


def test_archive_format_from_the_preset():
    from omniad_lite.colab.data import dataset_format

    assert [dataset_format(p) for p in ("paper-mvtec", "paper-visa", "demo", "realiad")] == [
        "mvtec", "visa", "mvtec", "realiad"]  # demo reads any layout: an MVTec-AD-layout archive
