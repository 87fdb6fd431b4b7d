"""Per-class metric tables as the papers print them, and their JSON/CSV export."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .metrics import METRIC_NAMES

TABLE_SCALE = 100.0  # tables show percentages, like the papers
TABLE_DECIMALS = 1


def metrics_table(per_class: dict[str, dict[str, float]], *, protocol: str | None = None,
                  rounded: bool = True) -> pd.DataFrame:
    """One row per class plus a ``mean`` row; columns the 7 metrics and ``mad``; in percent.

    Args:
        per_class: ``{class_name: compute_metrics(...) result}`` (fractions).
        protocol: protocol the numbers were computed with; stored in ``df.attrs["protocol"]``.
        rounded: round to one decimal like the papers (``False``: full precision, still ×100).

    Returns:
        ``pandas.DataFrame`` indexed by class name (the ``mean`` row last; it averages unrounded values).
    """
    if not per_class:
        raise InputError("metrics_table needs at least one class")
    cols = list(METRIC_NAMES) + ["mad"]
    df = pd.DataFrame.from_dict({c: {k: float(m[k]) for k in cols} for c, m in per_class.items()},
                                orient="index")[cols] * TABLE_SCALE
    df.loc["mean"] = df.mean(axis=0, skipna=False)
    df.index.name = "class"
    if rounded:
        df = df.round(TABLE_DECIMALS)
    df.attrs["protocol"] = protocol
    df.attrs["scale"] = "percent"
    return df


def save_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a :func:`metrics_table` to ``.json`` (with the protocol) or ``.csv`` (a ``protocol`` column).

    Args:
        df: the table.
        path: output file; the suffix picks the format.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    protocol = df.attrs.get("protocol")
    if path.suffix == ".json":
        rows = {str(c): {k: (None if pd.isna(v) else float(v)) for k, v in r.items()} for c, r in df.iterrows()}
        path.write_text(json.dumps({"protocol": protocol, "scale": df.attrs.get("scale", "percent"),
                                    "classes": rows}, indent=2) + "\n")
    elif path.suffix == ".csv":
        df.assign(protocol=protocol).to_csv(path)
    else:
        raise InputError(f"{path}: save_table writes .json or .csv, not {path.suffix!r}")
    return path
