"""The runtime cell: which device a notebook runs on and how long the paper recipe would take there.

:func:`runtime_report` prints the device (GPU name, memory, CUDA and torch versions), or on a CPU runtime one
line saying how to switch Colab to a GPU and what staying on the CPU costs. With a preset it also runs a
short **measured warm-up** of the real training step of that preset (random-init teacher: same speed, nothing
to download) on the device, with the preset's batch, precision and teacher-cache settings as they resolve there, and
estimates the recipe's training time as ``train images × epochs / images per second`` (evaluation excluded).
On a GPU it reports the warm-up's peak memory, so a user sees whether the recipe fits before training.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from .. import presets
from ..env import resolve_device, seed_everything

# train images of the paper datasets: MVTec-AD (Bergmann et al., CVPR 2019); VisA's "1cls" split (Zou et al.,
# ECCV 2022, split_csv/1cls.csv). Real-IAD's count depends on the views kept: it is counted from data_root.
PAPER_TRAIN_IMAGES = {"paper-mvtec": 3629, "paper-mvtec-100": 3629, "paper-visa": 8659}
DEFAULT_PAPER_PRESET = "paper-mvtec"
GPU_STEPS = (3, 5)   # (untimed, timed) warm-up steps on a GPU, at the preset's batch
CPU_STEPS = (0, 1)   # on a CPU, at CPU_BATCH: a paper step takes seconds there, notebooks must stay quick
CPU_BATCH = 1
HOURS_AS_DAYS = 48   # longer estimates are given in days
GIB = 2**30
COLAB_GPU_HINT = "on Colab: Runtime → Change runtime type → T4 GPU (free), then Runtime → Run all"


@dataclass
class RuntimeReport:
    """What :func:`runtime_report` found and measured (``None``: not measured / not applicable)."""

    device: str
    name: str
    torch: str
    cuda: str | None = None
    memory_bytes: int | None = None
    preset: str | None = None
    batch_size: int | None = None
    precision: str | None = None
    teacher_cache: str | None = None
    cache_bytes: int | None = None
    images_per_s: float | None = None
    peak_bytes: int | None = None
    train_images: int | None = None
    epochs: int | None = None
    error: str | None = None

    @property
    def estimate_s(self) -> float | None:
        """Projected training time of the recipe in seconds (``train_images × epochs / images_per_s``)."""
        if not (self.images_per_s and self.train_images and self.epochs):
            return None
        return self.train_images * self.epochs / self.images_per_s

    def lines(self) -> list[str]:
        """The report as printed, each line within 100 columns."""
        if self.device == "cpu":
            out = [f"runtime: CPU only ({self.name}), torch {self.torch} — no GPU.", f"{COLAB_GPU_HINT}."]
            if self.estimate_s:
                out += [f"staying on this CPU, the {self.preset} recipe takes {_recipe(self)}"]
        else:
            out = [f"runtime: GPU {self.name}, {self.memory_bytes / GIB:.1f} GiB, CUDA {self.cuda}, torch {self.torch}"]
            if self.preset and self.error is None:
                cache = f" ({self.cache_bytes / GIB:.2f} GiB, computed)" if self.cache_bytes else ""
                out += [f"{self.preset} here: batch {self.batch_size}, precision {self.precision}, teacher-feature "
                        f"cache {self.teacher_cache}{cache}",
                        f"warm-up peak {self.peak_bytes / GIB:.1f} GiB of {self.memory_bytes / GIB:.1f} GiB"]
                if self.estimate_s:
                    out.append(f"estimated training time: {_recipe(self)}")
        if self.error:
            out.append(self.error)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _recipe(r: RuntimeReport) -> str:
    hours = r.estimate_s / 3600
    when = f"{hours / 24:,.0f} days" if hours >= HOURS_AS_DAYS else f"{hours:,.1f} h"
    return (f"≈ {when}\n  ({r.train_images:,} images × {r.epochs} epochs at {r.images_per_s:.2f} images/s, "
            f"warm-up batch {r.batch_size}; evaluation excluded)")


def runtime_report(device: str = "auto", preset: str | None = None, *, data_root: str | None = None,
                   show: bool = True) -> RuntimeReport:
    """Describe the device and, given a preset, estimate the paper recipe's training time on it.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (a notebook's ``device`` parameter).
        preset: a preset name; the estimate is for it when it is a paper preset, else for
            ``paper-mvtec`` (the paper run a notebook's demo stands in for). ``None``: no warm-up.
        data_root: the dataset root, to count its train images (default: the paper dataset's known count).
        show: print the report.
    """
    dev = _checked_parameters(device, preset, data_root)
    report = _describe(dev)
    if preset is not None:
        name = preset if preset.startswith("paper-") else DEFAULT_PAPER_PRESET
        cfg = presets.get(name)
        report.preset, report.epochs = name, cfg.train.epochs
        report.train_images = _train_images(cfg, data_root if name == preset else None)
        _warm_up(report, cfg, dev)
    if show:
        print(report)
    return report


def _checked_parameters(device, preset: str | None, data_root) -> torch.device:
    """The notebook's ``device``, ``preset`` and ``data_root`` checked before any work (one-line
    :class:`~omniad_lite.notebook_params.NotebookParameterError` naming the parameter); the device."""
    from ..notebook_params import NotebookParameterError, check_folder, check_preset

    if preset is not None:
        check_preset(preset)
    if data_root is not None:
        check_folder("data_root", data_root)
    try:
        return resolve_device(device)
    except (ValueError, RuntimeError, AssertionError) as e:
        raise NotebookParameterError(f"parameter device={device!r}: {e}") from None


def _describe(dev: torch.device) -> RuntimeReport:
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        return RuntimeReport(device=str(dev), name=props.name, torch=torch.__version__, cuda=torch.version.cuda,
                             memory_bytes=props.total_memory)
    return RuntimeReport(device=dev.type, name=f"{torch.get_num_threads()} threads", torch=torch.__version__)


def _train_images(cfg, data_root: str | None) -> int | None:
    """The train split's size: counted under ``data_root`` (file listing only), else the paper dataset's."""
    if data_root is None:
        return PAPER_TRAIN_IMAGES.get(cfg.name)
    from ..data import load_samples

    data = cfg.data
    return len(load_samples(data_root, data.format, "train", data.classes, **dict(data.options or {})))


def _warm_up(report: RuntimeReport, cfg, dev: torch.device) -> None:
    """Time a few real training steps of ``cfg``'s model on ``dev``; fill the speed and memory fields."""
    from ..model import build_model

    seed_everything(cfg.train.seed)
    model = build_model(dataclasses.replace(cfg.model, encoder_weights=None)).to(dev).train()
    try:
        dtype = _settings(report, cfg.train, model, dev)
        seconds, timed = _timed_steps(model, cfg.train, dtype, report, dev)
    except torch.cuda.OutOfMemoryError:
        report.error = (f"out of GPU memory at batch {report.batch_size}: this GPU cannot train {report.preset} "
                        f"as set; lower batch_size (the learning rate follows it) or pick a larger GPU")
        return
    finally:
        del model
    report.images_per_s = timed * report.batch_size / seconds
    if dev.type == "cuda":
        report.peak_bytes = torch.cuda.max_memory_allocated(dev)
        if report.teacher_cache == "memory" and report.cache_bytes:
            report.peak_bytes += report.cache_bytes  # the cache itself is not allocated by the warm-up
        torch.cuda.empty_cache()


def _settings(report: RuntimeReport, t_cfg, model, dev: torch.device):
    """Batch, precision and teacher cache as training resolves them on ``dev`` (recorded in ``report``); the dtype."""
    from ..training.step import resolve_precision
    from ..training.teacher_cache import feature_bytes_per_image, resolve_cache_mode

    mode = t_cfg.cache_teacher_features
    if report.train_images:  # "auto" decides from the cache's size; unknown size: measured without the cache
        per_image = feature_bytes_per_image(model.encoder.channels, model.encoder.reductions,
                                            model.preprocess.image_size)
        report.cache_bytes = report.train_images * per_image
        mode = resolve_cache_mode(mode, report.cache_bytes, dev)
    dtype = resolve_precision(t_cfg.precision, dev)
    report.teacher_cache = "off" if mode == "auto" else mode
    report.batch_size = t_cfg.batch_size if dev.type == "cuda" else min(t_cfg.batch_size, CPU_BATCH)
    report.precision = "fp32" if dtype is None else {torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
    return dtype


def _timed_steps(model, t_cfg, dtype, report: RuntimeReport, dev: torch.device) -> tuple[float, int]:
    """Run the recipe's optimiser steps on a random batch; (seconds of the timed steps, their number)."""
    from ..model import reconstruction_loss
    from ..training.optim import build_optimizer
    from ..training.step import TrainStep, autocast_factory, optimizer_step

    untimed, timed = GPU_STEPS if dev.type == "cuda" else CPU_STEPS
    autocast = autocast_factory(dtype, dev)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    optimizer = build_optimizer(t_cfg, model)
    step = TrainStep(model, reconstruction_loss)
    trainable = [p for p in model.parameters() if p.requires_grad]
    size = model.preprocess.image_size
    images = torch.randn(report.batch_size, 3, size, size, device=dev)  # (B, 3, S, S)
    inputs = {"images": images}
    if report.teacher_cache != "off":  # cached features: stored in fp16, fed as float32 copies
        with torch.no_grad(), autocast():
            inputs = {"features": [f.to(torch.float16).float() for f in model.encoder(images)]}
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    for i in range(untimed + timed):
        if i == untimed:
            _sync(dev)
            t0 = time.perf_counter()
        with autocast():
            loss = step(**inputs)
        optimizer_step(loss, optimizer, scaler, trainable, t_cfg.grad_clip)
    _sync(dev)
    return time.perf_counter() - t0, timed


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
