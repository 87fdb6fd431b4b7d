"""Export a trained run for deployment.

- :mod:`.onnx` — :func:`~omniad_lite.export.onnx.export_onnx`: an ONNX graph from a uint8 image batch to the
  anomaly map and image score (normalisation and blur inside), thresholds in its metadata;
  :class:`~omniad_lite.export.onnx.OnnxScorer` runs it with ONNX Runtime and decides like ``predict``.

Needs the optional extra ``export`` (``pip install "omniad_lite[export]"``: onnx, onnxruntime).
"""
from __future__ import annotations
