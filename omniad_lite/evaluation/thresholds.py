"""Decision thresholds on image scores, per class, and the normalised scale (0 = typical normal, 1 = threshold).

Two ways to choose a class's threshold, both computed and saved in ``thresholds.json``; ``method`` picks
the one used for decisions:

``"fpr"`` (default)
    From normal images the model never trained on (the held-out ``val`` split, ``data.val_fraction``): with
    ``n`` normal scores and a target false-positive rate ``f``, at most ``k = floor(f·n)`` of them may be
    flagged, and the threshold is the smallest value that flags at most ``k``: just above the ``(k+1)``-th
    highest normal score (``numpy.nextafter``). A decision is ``score >= threshold``, so on those normal
    images the false-positive rate is ``<= f`` by construction. With few images (``n < 1/f - 1``, i.e. fewer
    than 99 at 1 %) ``k = 0`` and the threshold sits just above the highest normal score; a *new* normal
    image then exceeds it with probability about ``1/(n+1)`` (exchangeability), which is more than ``f``:
    each such class gets a ``warning`` saying so.
``"f1"``
    The threshold that maximises F1 on the labelled test split (``sklearn.metrics.precision_recall_curve``),
    only where a class has both normal and anomalous test images. It is tuned on test data, and marked so
    (``f1_tuned_on``): its test F1 is optimistic.

Normalised scale: ``(score - normal_level) / (threshold - normal_level)`` with ``normal_level`` the median
normal score (but at least ``MIN_SCALE`` = 1 % of the threshold below it), so 0 reads "a typical normal
image" and 1 "the threshold"; maps are rescaled the same way (a pixel at 1 alone would reach the
threshold). The pooled entry ``all`` (every class's scores together) is used for images whose class is
unknown. Ours: the released Omni-AD code reports threshold-free metrics only.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError

METHODS = ("fpr", "f1")
DEFAULT_METHOD = "fpr"
DEFAULT_FPR = 0.01
POOLED = "all"  # the entry for images whose class is unknown
F1_TUNED_ON = "test split (labelled anomalies): tuned on test data, its test F1 is optimistic"
DECISION_RULE = "anomalous when image score >= threshold"
NORMALISED_RULE = "(score - normal_level) / (threshold - normal_level): 0 = median normal score, 1 = threshold"
MIN_SCALE = 0.01  # threshold - normal_level is at least this share of |threshold| (few or tied normal scores)


def threshold_at_fpr(normal_scores, fpr: float) -> float:
    """Smallest threshold flagging at most ``floor(fpr·n)`` of ``n`` normal scores (rule ``score >= t``).

    Args:
        normal_scores: ``(n,)`` image scores of normal images, ``n >= 1``.
        fpr: target false-positive rate in ``(0, 1)``.
    """
    check_fpr(fpr)
    s = np.sort(np.asarray(normal_scores, dtype=np.float64).ravel())[::-1]  # (n,) descending
    if s.size == 0:
        raise InputError("threshold_at_fpr needs at least one normal score")
    allowed = int(math.floor(fpr * s.size + 1e-9))  # false positives allowed (tolerance: 0.01·100 = 1)
    return float(np.nextafter(s[allowed], np.inf))  # only scores strictly above s[allowed] are flagged


def f1_optimal_threshold(scores, labels) -> tuple[float, float] | None:
    """``(threshold, F1)`` maximising F1 (rule ``score >= t``), or ``None`` without both labels."""
    from sklearn.metrics import precision_recall_curve  # lazy: keeps this NumPy module light (sklearn: ~1 s)

    y = np.asarray(labels).astype(int).ravel()
    if np.unique(y).size < 2:
        return None
    precision, recall, thresholds = precision_recall_curve(y, np.asarray(scores, dtype=np.float64).ravel())
    p, r = precision[:-1], recall[:-1]  # the last point (P=1, R=0) has no threshold
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, np.finfo(float).tiny), 0.0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def check_fpr(fpr: float) -> float:
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not 0 < fpr < 0.5:
        raise InputError(f"fpr={fpr!r} must be a false-positive rate in (0, 0.5), e.g. 0.01 for 1 %")
    return float(fpr)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"threshold method {method!r} is not one of {METHODS} ('fpr': from held-out normal "
                         f"images at a false-positive rate; 'f1': F1-optimal on the labelled test split)")
    return method


def normal_level(normal_scores, threshold: float) -> float:
    """The 0 of the normalised scale: the median normal score, at least ``MIN_SCALE·|threshold|`` below
    ``threshold`` (with one or two normal scores the median sits right under the threshold; the floor keeps
    the scale from stretching a tiny difference into a large normalised one)."""
    level = float(np.median(np.asarray(normal_scores, dtype=np.float64)))
    return min(level, threshold - MIN_SCALE * max(abs(threshold), np.finfo(np.float32).tiny))


# Where the normal scores of a class come from, and how to get more of them (the fix a few-normals warning names)
OWN_VALIDATION = "the dataset's own normal validation images (MVTec AD 2 validation/)"
HOLD_OUT_MORE = "hold out more (data.val_fraction) or add normal images"
MORE_NORMALS = {OWN_VALIDATION: "add normal images to the class's validation/good folder"}


def normalize(values, level: float, threshold: float):
    """``(values - level) / (threshold - level)``: 0 = typical normal, 1 = threshold (arrays or floats)."""
    return (values - level) / (threshold - level)


def class_entry(normal_scores, normal_paths, test_scores, test_labels, *, method: str, fpr: float,
                normal_source: str) -> dict[str, Any]:
    """One class's (or the pooled) thresholds as a JSON-ready dict; see the module docstring for the fields."""
    normal = np.asarray(normal_scores, dtype=np.float64).ravel()
    tested = test_scores is not None and len(test_scores) > 0
    f1 = f1_optimal_threshold(test_scores, test_labels) if tested else None
    entry: dict[str, Any] = {"n_normal": int(normal.size), "normal_source": normal_source,
                             "fpr_threshold": None, "f1_threshold": None, "f1": None, "f1_tuned_on": None}
    if normal.size:
        t = threshold_at_fpr(normal, fpr)
        entry.update(fpr_threshold=t, normal_false_positives=int((normal >= t).sum()))
    if f1 is not None:
        entry.update(f1_threshold=f1[0], f1=f1[1], f1_tuned_on=F1_TUNED_ON)
    used = method if entry[f"{method}_threshold"] is not None else ("fpr" if normal.size else "f1")
    entry["method"] = used
    entry["threshold"] = entry[f"{used}_threshold"]
    if entry["threshold"] is not None:
        base = normal if normal.size else np.asarray(test_scores)[np.asarray(test_labels) == 0]
        entry["normal_level"] = normal_level(base if base.size else [entry["threshold"]], entry["threshold"])
    else:
        entry["normal_level"] = None
    entry["warning"] = _warning(normal.size, fpr, used, method, normal_source)
    entry["test"] = _test_rates(test_scores, test_labels, entry["threshold"]) if tested else None
    entry["normal_scores"] = [float(v) for v in normal]
    entry["normal_paths"] = list(normal_paths)
    entry["test_scores"] = [float(v) for v in test_scores] if tested else []
    entry["test_labels"] = [int(v) for v in test_labels] if tested else []
    return entry


def _warning(n: int, fpr: float, used: str, asked: str, normal_source: str) -> str | None:
    if used != asked:
        return (f"method {asked!r} is not available for this class (no held-out normal images for 'fpr', no "
                f"labelled anomalies and normals for 'f1'); {used!r} is used")
    if used == "fpr" and n < 1 / fpr - 1:
        return (f"only {n} held-out normal image(s): the threshold sits just above their highest score, so a new "
                f"normal image exceeds it with probability about 1/(n+1) = {1 / (n + 1):.0%}, not the {fpr:.0%} "
                f"asked; {MORE_NORMALS.get(normal_source, HOLD_OUT_MORE)}")
    return None


def _test_rates(scores, labels, threshold: float | None) -> dict[str, Any] | None:
    """False- and true-positive rates of the decision on the test split (``None`` rates when undefined)."""
    if threshold is None:
        return None
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    flagged = s >= threshold
    n_neg, n_pos = int((y == 0).sum()), int((y == 1).sum())
    return {"n_normal": n_neg, "n_anomalous": n_pos,
            "false_positive_rate": float(flagged[y == 0].mean()) if n_neg else None,
            "true_positive_rate": float(flagged[y == 1].mean()) if n_pos else None}


def build_thresholds(normal: dict[str, tuple[list, list]], test: dict[str, tuple[list, list]] | None, *,
                     method: str = DEFAULT_METHOD, fpr: float = DEFAULT_FPR,
                     normal_source: str = "held-out normal training images") -> dict[str, Any]:
    """The content of ``thresholds.json``.

    Args:
        normal: ``{class: (normal image scores, their paths)}`` — the held-out normal images.
        test: ``{class: (test image scores, 0/1 labels)}`` or ``None`` (then no F1 thresholds).
        method: ``"fpr"`` or ``"f1"``: which threshold decisions use (the other is saved too).
        fpr: target false-positive rate of the ``"fpr"`` thresholds.
        normal_source: where the normal scores come from (recorded).
    """
    check_method(method)
    check_fpr(fpr)
    test = test or {}
    classes = sorted(set(normal) | set(test))
    entries = {c: class_entry(*normal.get(c, ([], [])), *test.get(c, (None, None)), method=method, fpr=fpr,
                              normal_source=normal_source) for c in classes}
    pooled_normal = ([v for c in classes for v in normal.get(c, ([], []))[0]],
                     [p for c in classes for p in normal.get(c, ([], []))[1]])
    pooled_test = ([v for c in classes for v in test.get(c, ([], []))[0]],
                   [v for c in classes for v in test.get(c, ([], []))[1]])
    pooled = class_entry(*pooled_normal, *pooled_test, method=method, fpr=fpr, normal_source=normal_source)
    return {"version": 1, "method": method, "fpr": fpr, "decision": DECISION_RULE, "normalized": NORMALISED_RULE,
            "classes": entries, POOLED: pooled}


class Thresholds:
    """The content of ``thresholds.json`` with the decision rule.

    Args:
        payload: what :func:`build_thresholds` returns (or ``RunDir.read_thresholds()``).
    """

    def __init__(self, payload: dict[str, Any]):
        if not isinstance(payload, dict) or "classes" not in payload or POOLED not in payload:
            raise InputError("thresholds payload must hold 'classes' and 'all' (as thresholds.json does); "
                             "recalibrate with omniad_lite.calibrate(run_dir)")
        self.payload = payload

    @property
    def classes(self) -> list[str]:
        return sorted(self.payload["classes"])

    @property
    def method(self) -> str:
        return self.payload["method"]

    @property
    def fpr(self) -> float:
        return self.payload["fpr"]

    def entry(self, cls_name: str | None) -> dict[str, Any]:
        """The entry of ``cls_name`` (``None`` or ``"all"``: the pooled one); an unknown class raises."""
        if cls_name is None or cls_name == POOLED:
            return self.payload[POOLED]
        if cls_name not in self.payload["classes"]:
            raise InputError(f"class {cls_name!r} has no threshold in this run; its classes: "
                             f"{', '.join(self.classes)} (or None for the pooled threshold)")
        return self.payload["classes"][cls_name]

    def decide(self, score: float, cls_name: str | None) -> tuple[float | None, float | None, bool | None]:
        """``(threshold, normalised score, is_anomalous)`` of an image score (``None`` without a threshold)."""
        e = self.entry(cls_name)
        if e["threshold"] is None:
            return None, None, None
        return e["threshold"], float(normalize(score, e["normal_level"], e["threshold"])), bool(score >= e["threshold"])

    def rechoose(self, method: str | None = None, fpr: float | None = None) -> Thresholds:
        """The same scores with another method and/or false-positive rate (no model needed)."""
        normal, test, source = {}, {}, None
        for c, e in self.payload["classes"].items():
            normal[c] = (e["normal_scores"], e["normal_paths"])
            source = source or e["normal_source"]
            if e["test_scores"]:
                test[c] = (e["test_scores"], e["test_labels"])
        return Thresholds(build_thresholds(normal, test, method=method or self.method, fpr=fpr or self.fpr,
                                           normal_source=source or "held-out normal training images"))

    def summary(self) -> list[dict[str, Any]]:
        """One row per class (then ``all``): method, threshold, normal level, images, test rates, warning."""
        rows = []
        for c in [*self.classes, POOLED]:
            e = self.entry(c)
            test = e.get("test") or {}
            rows.append({"class": c, "method": e["method"], "threshold": e["threshold"],
                         "normal_level": e["normal_level"], "n_normal": e["n_normal"],
                         "test_fpr": test.get("false_positive_rate"), "test_tpr": test.get("true_positive_rate"),
                         "warning": e["warning"]})
        return rows


__all__ = ["Thresholds", "METHODS", "DEFAULT_METHOD", "DEFAULT_FPR", "POOLED", "threshold_at_fpr",
           "f1_optimal_threshold", "normal_level", "normalize", "class_entry", "build_thresholds", "check_fpr",
           "check_method"]
