"""Trained runs for the notebooks: reuse one, or train the demo preset; say in one line how good it is.

Notebooks that *look at* a trained model (02 the attention maps, 04 the evaluation) take a run directory
written by 00 or 03. Run alone they train the ``demo`` preset with its defaults — the run whose quality the
kit promises (mean image AUROC ≥ :data:`DEMO_QUALITY` on the demo data) — so that no figure comes from an
under-trained model without saying so. :func:`quality_note` is the sentence shown next to a run's numbers:
plain for a full run, **bold** with what a full run gives for a short (smoke) run. :func:`config_table`
shows the handful of settings that matter instead of a config dump. Ours (the released code has no notebooks).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from . import presets
from .config import ExperimentConfig
from .notebook_params import NotebookParameterError, check_param
from .run import RunDir

DEMO_QUALITY = 95.0  # mean image AUROC (×100) a full demo run reaches on the demo data (the preset is tuned to it)


def is_complete(run_dir: str | Path) -> bool:
    """True when ``run_dir`` holds a finished run: weights and the final ``metrics.json``."""
    run = RunDir(run_dir)
    return run.has_model() and (run / RunDir.METRICS).is_file()


def check_run_dir(run_dir: str | Path | None) -> Path | None:
    """The ``run_dir`` parameter as a ``Path`` to a finished run, or ``None``; else a one-line error.

    Raises:
        NotebookParameterError: ``run_dir`` is not a string/path, or holds no finished run.
    """
    if run_dir is None:
        return None
    check_param("run_dir", run_dir, (str, Path))
    if not is_complete(run_dir):
        raise NotebookParameterError(f"parameter run_dir={str(run_dir)!r} holds no finished run "
                                     "(model.safetensors + metrics.json); pass a run directory written by "
                                     "notebook 00 or 03, or None to use or train the demo run")
    return Path(run_dir)


def trained_run(run_dir: str | Path | None, candidates: Sequence[str | Path], fallback_dir: str | Path, *,
                device: str = "auto") -> Path:
    """The run directory a notebook should look at; trains the demo preset when there is none.

    Args:
        run_dir: the ``run_dir`` parameter: a finished run to use, or ``None``.
        candidates: where other notebooks write their runs by default (first finished one wins).
        fallback_dir: where to train the demo preset (its defaults) when nothing else exists; a finished
            run already there is reused.
        device: device for that training.

    Raises:
        NotebookParameterError: ``run_dir`` is given but holds no finished run.
    """
    if check_run_dir(run_dir) is not None:
        return Path(run_dir)
    for candidate in [*candidates, fallback_dir]:
        if is_complete(candidate):
            return Path(candidate)
    from .training import train  # lazy: torch and the trainer load only when a run must be trained

    print(f"no finished run found in {', '.join(str(c) for c in candidates)}: training the demo preset "
          f"into {fallback_dir} (about a minute on a CPU)")
    cfg = presets.get("demo").with_overrides({"train.device": device})
    train(cfg, fallback_dir, overwrite=True)
    return Path(fallback_dir)


def is_short_schedule(cfg: ExperimentConfig) -> bool:
    """True when ``cfg`` trains less than its preset's full schedule (fewer epochs, or an iteration cap)."""
    full = presets.get(cfg.name).train if cfg.name in presets.names() else None
    if full is None:
        return False
    return cfg.train.iterations is not None or cfg.train.epochs < full.epochs


def quality_note(run_dir: str | Path) -> str:
    """One Markdown sentence on the run: its schedule, steps and mean image AUROC; bold for a short run.

    A demo-preset run on the demo data is *demo quality* when its mean image AUROC is at least
    :data:`DEMO_QUALITY`; a shorter schedule or a lower AUROC is called a smoke run, with the figure a full
    demo run gives. Other presets are called short when they train less than their preset's schedule.
    """
    run = RunDir(run_dir)
    cfg = run.load_config()
    metrics = run.read_metrics() or {}
    mean = (metrics.get("final") or {}).get("mean", {})
    auroc, steps = mean.get("image_auroc"), metrics.get("step")
    what = f"{cfg.name} preset, {steps} steps, mean image AUROC {_fmt(auroc)}"
    short = is_short_schedule(cfg)
    if cfg.name == "demo" and cfg.data.root is None:
        if not short and auroc is not None and auroc >= DEMO_QUALITY:
            return f"Trained run ({what}): demo quality (≥ {DEMO_QUALITY:.0f} on the demo data)."
        return (f"**Smoke run ({what}): a short run, not what the method does. The demo preset's full "
                f"schedule ({presets.get('demo').train.epochs} epochs, `epochs=None`) reaches mean image "
                f"AUROC ≥ {DEMO_QUALITY:.0f} on the demo data.**")
    if short:
        return (f"**Short run ({what}): the {cfg.name} preset's schedule is {presets.get(cfg.name).train.epochs} "
                "epochs; the published numbers (notebook 04) are for full runs.**")
    return f"Trained run ({what})."


def config_table(cfg: ExperimentConfig) -> pd.DataFrame:
    """The settings a reader needs to know about a run, as a two-column table (the rest is in config.json)."""
    m, d, t = cfg.model, cfg.data, cfg.train
    schedule = f"{t.iterations} iterations" if t.iterations is not None else f"{t.epochs} epochs"
    rows = {
        "preset": cfg.name,
        "data": d.root if d.root is not None else "offline demo data",
        "classes": "all" if d.classes is None else ", ".join(d.classes),
        "teacher": f"{m.encoder} ({m.image_size}² input)",
        "decoder depths": str(tuple(m.decoder_depths)),
        "learnable tokens (query / key-value)": f"{m.num_query_tokens} / {m.num_kv_tokens}",
        "FFN": m.ffn,
        "schedule": f"{schedule}, batch {t.batch_size}, lr {t.lr:g}",
        "device, precision": f"{t.device}, {t.precision}",
        "teacher-feature cache": str(t.cache_teacher_features),
    }
    return pd.DataFrame({"value": rows}).rename_axis("setting")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"
