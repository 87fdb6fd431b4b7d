"""Does the pretrained teacher matter? Train the ``demo`` preset twice: ImageNet teacher vs random init.

Omni-AD reconstructs the features of a *frozen* encoder, so everything it can detect has to be visible in
those features. This trains the same recipe on the demo dataset with ``model.encoder_weights="imagenet"``
(the offline EfficientNet-Lite0 weights) and with ``model.encoder_weights=None`` (same network, random
init), then prints both per-class tables (final models, kit protocol).

    python benchmarks/bench_teacher.py                    # the demo preset as it is
    python benchmarks/bench_teacher.py --set train.epochs=5
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from omniad_lite import presets
from omniad_lite.training import train

COLUMNS = ["image_auroc", "pixel_auroc", "pixel_aupro", "mad"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="demo")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", help="keep the two run directories here (default: a temporary folder)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        tables = {}
        for label, weights in (("ImageNet teacher", "imagenet"), ("random-init teacher", None)):
            cfg = presets.get(args.preset).with_overrides([*args.overrides]).with_overrides(
                {"model.encoder_weights": weights})
            t0 = time.perf_counter()
            result = train(cfg, out / (weights or "random"), overwrite=True)
            tables[label] = result.evaluation.table
            print(f"\n{label} ({time.perf_counter() - t0:.0f} s):\n{result.evaluation.table.to_string()}", flush=True)

    print(f"\ncommand: python benchmarks/{' '.join(['bench_teacher.py', *sys.argv[1:]])}")
    both = pd.concat({k: v[COLUMNS] for k, v in tables.items()}, axis=1)
    print(both.to_markdown() if _has_tabulate() else both.to_string())


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
