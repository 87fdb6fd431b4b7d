"""ONNX export: one graph from a uint8 RGB image batch to the anomaly map and the image score.

Graph (opset 17, batch dimension dynamic)::

    images       uint8   (B, 3, S, S)  RGB, the image resized to S×S (bilinear, PIL) — nothing else
    anomaly_map  float32 (B, S, S)     Omni-AD: 1 - cos per scale, upsampled, averaged, Gaussian blur σ = 4;
                                       kNN: distance of each patch to its nearest memory-bank row, the same way
    score        float32 (B,)          max of the map

A kNN-baseline run exports too: the nearest-neighbour search is one matmul against the memory bank (a
constant of the graph) and a top-1, so the file holds the whole bank (``rows × D`` float32). PatchCore's
reweighted score (``knn.reweight=true``) is not exported (its neighbourhood gather has no fixed graph here).

Inside the graph: ``x / 255``, ``(x - mean) / std`` with the run's normalisation (``ModelConfig.mean/std``),
the frozen encoder, neck, decoder and the scoring of :mod:`omniad_lite.model.anomaly_map` (scipy-exact blur
with symmetric borders): the same code as ``predict``, traced. Outside: decoding, conversion to RGB and the
resize to S×S (do it with PIL's bilinear resize, as the kit does, to get the kit's numbers), then the
decision ``score >= threshold`` of the image's class. The metadata (``custom_metadata_map`` in ONNX Runtime)
holds the thresholds (``omniad_lite.thresholds``: per class ``threshold``, ``normal_level``, ``method``, and
the pooled ``all``), the preprocessing (``omniad_lite.preprocess``) and the class list.

Exported with the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), which needs only the
``onnx`` package. The released code's ``ffn="resampled"`` redraws weights at every call and cannot be
exported. ``tests/test_export_onnx.py`` checks ONNX Runtime against torch on demo images.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.images import load_image
from ..errors import InputError, MissingDependencyError
from ..evaluation.calibration import load_thresholds
from ..evaluation.inference import forward_scores
from ..evaluation.run_loading import load_run
from ..evaluation.thresholds import POOLED, Thresholds
from ..files import atomic_write

OPSET = 17
INPUT, MAP, SCORE = "images", "anomaly_map", "score"
META_PREFIX = "omniad_lite."
EXAMPLE_BATCH = 2
UINT8_MAX = 255.0


class ScoringGraph(torch.nn.Module):
    """The exported computation: uint8 ``(B, 3, S, S)`` → ``(B, S, S)`` map and ``(B,)`` score."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        pre = model.preprocess
        self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (images.float() / UINT8_MAX - self.mean) / self.std  # (B, 3, S, S), like Preprocess.normalise
        return forward_scores(self.model, x)  # (B, S, S) maps, (B,) scores


def _metadata(config, preprocess, thresholds: Thresholds | None) -> dict[str, str]:
    pre = {**preprocess.to_dict(),
           "input": "uint8 RGB (B, 3, S, S): decode, convert to RGB, resize to S x S (PIL bilinear), HWC -> CHW"}
    meta = {"preprocess": json.dumps(pre), "outputs": f"{MAP} float32 (B, S, S); {SCORE} float32 (B,) = max of map",
            "encoder": config.model.encoder}
    if thresholds is not None:
        keep = ("threshold", "normal_level", "method", "fpr_threshold", "f1_threshold", "n_normal")
        compact = {"method": thresholds.method, "fpr": thresholds.fpr, "decision": thresholds.payload["decision"],
                   "normalized": thresholds.payload["normalized"],
                   "classes": {c: {k: thresholds.entry(c)[k] for k in keep} for c in thresholds.classes},
                   POOLED: {k: thresholds.entry(POOLED)[k] for k in keep}}
        meta["thresholds"] = json.dumps(compact)
        meta["classes"] = json.dumps(thresholds.classes)
    return {META_PREFIX + k: v for k, v in meta.items()}


def export_onnx(run_dir, out: str | Path, *, opset: int = OPSET) -> Path:
    """Export a run to ONNX (see the module docstring for the graph and its metadata).

    Args:
        run_dir: a trained run directory (its ``thresholds.json`` goes into the metadata when present).
        out: the ``.onnx`` file to write (atomically).
        opset: ONNX opset version.

    Returns:
        The written path.
    """
    try:
        import onnx  # lazy: an optional dependency (the "export" extra)
    except ImportError:
        raise MissingDependencyError("ONNX export needs the 'export' extra: pip install 'omniad_lite[export]' "
                          "(onnx, onnxruntime)") from None
    loaded = load_run(run_dir, device="cpu")
    if loaded.config.model.ffn == "resampled":
        raise InputError(f"run {run_dir} uses model.ffn='resampled' (FFN weights redrawn at every call): it has no "
                         f"fixed graph to export; train with model.ffn='learned'")
    if loaded.config.method == "knn" and loaded.model.config.reweight:
        raise InputError(f"run {run_dir} uses knn.reweight=true, whose neighbourhood gather is not exported; "
                         f"export a run fitted with knn.reweight=false (the default)")
    graph = ScoringGraph(loaded.model).eval()
    side = loaded.model.preprocess.image_size
    example = torch.zeros(EXAMPLE_BATCH, 3, side, side, dtype=torch.uint8)
    out = Path(out)

    def write(tmp: str) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(graph, (example,), tmp, dynamo=False, opset_version=opset, input_names=[INPUT],
                              output_names=[MAP, SCORE], dynamic_axes={INPUT: {0: "batch"}, MAP: {0: "batch"},
                                                                      SCORE: {0: "batch"}})
        proto = onnx.load(tmp)
        for key, value in _metadata(loaded.config, loaded.model.preprocess, load_thresholds(loaded.run_dir)).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)

    atomic_write(out, write)
    return out


def session_options(threads: int | None = None):
    """ONNX Runtime options for scoring on a CPU (``benchmarks/bench_predict.py`` measures them, docs/speed.md).

    All graph optimisations; ``threads`` intra-op threads (``None``: ONNX Runtime's default, one per physical
    core) and one inter-op thread (the graph is a chain); idle threads sleep instead of spin-waiting, which
    costs nothing alone and keeps a busy or shared CPU from being burnt by waiting threads.
    """
    import onnxruntime as ort  # lazy: an optional dependency (the "export" extra)

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or 0
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxScorer:
    """Run an exported model with ONNX Runtime and decide like ``predict`` (thresholds from its metadata).

    Args:
        path: the ``.onnx`` file written by :func:`export_onnx`.
        threads: intra-op threads (``None``: ONNX Runtime's default, one per physical core).
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort  # lazy: an optional dependency (the "export" extra)

        self.session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                            providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.preprocess_info: dict[str, Any] = json.loads(meta[META_PREFIX + "preprocess"])
        raw = meta.get(META_PREFIX + "thresholds")
        self.thresholds: dict[str, Any] | None = json.loads(raw) if raw else None
        self.image_size = int(self.preprocess_info["image_size"])

    def load(self, path: str | Path) -> np.ndarray:
        """An image file → the graph's input ``(3, S, S)`` uint8 (the kit's decoding and PIL bilinear resize)."""
        return np.ascontiguousarray(load_image(path, self.image_size).transpose(2, 0, 1))  # (3, S, S)

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(B, 3, S, S)`` uint8 → ``(B, S, S)`` maps and ``(B,)`` scores."""
        maps, scores = self.session.run([MAP, SCORE], {INPUT: np.asarray(images, dtype=np.uint8)})
        return maps, scores

    def decide(self, score: float, cls_name: str | None = None) -> tuple[float, float, bool]:
        """``(threshold, normalised score, is_anomalous)`` with the class's threshold (``None``: pooled)."""
        if self.thresholds is None:
            raise InputError("this ONNX model has no thresholds in its metadata (its run had no thresholds.json)")
        entry = self.thresholds[POOLED] if cls_name in (None, POOLED) else self.thresholds["classes"][cls_name]
        t, level = entry["threshold"], entry["normal_level"]
        return t, (float(score) - level) / (t - level), bool(float(score) >= t)
