"""Is the demo dataset hard enough that the teacher's pretraining matters? A training-free probe.

Runs the kit's kNN baseline (:mod:`omniad_lite.baselines`, PatchCore-style nearest-neighbour scoring of the
frozen teacher's patch features) on the demo data with the ``demo`` preset's teacher
(``tf_efficientnet_lite0``, offline ImageNet wheel) and with the same network at random init, and prints
image / pixel AUROC per class. ``--bank per-class`` fits one memory bank per class (PatchCore's original
setting); ``--bank shared`` one bank for all classes (the multi-class setting Omni-AD is trained in).
No training, so it runs in about a minute on a CPU; it probes the data, not Omni-AD itself.

    python benchmarks/bench_demo_difficulty.py --bank per-class --set knn.scales=[1] --set knn.patch_size=1 \\
        --set knn.coreset_ratio=1.0 --set knn.blur_sigma=0      # the earlier probe: stride 8, every patch
    python benchmarks/bench_demo_difficulty.py --bank shared     # the baseline's defaults
"""
from __future__ import annotations

import argparse

import numpy as np

from omniad_lite import presets
from omniad_lite.baselines.knn import KnnConfig
from omniad_lite.evaluation.evaluator import evaluate
from omniad_lite.methods import split_settings
from omniad_lite.training.knn_fit import fit_knn

CLASSES = ["brick", "coffee", "coins", "grass", "gravel"]


def probe(weights: str | None, bank: str, knn: KnnConfig, seed: int) -> dict[str, tuple[float, float]]:
    """``{class: (image AUROC, pixel AUROC)}`` in percent for one teacher."""
    base = presets.get("demo").with_overrides({"method": "knn", "model.encoder_weights": weights, "train.seed": seed,
                                               "train.device": "cpu"})
    groups = [[c] for c in CLASSES] if bank == "per-class" else [CLASSES]
    out = {}
    for classes in groups:
        cfg = base.with_overrides({"data.classes": classes})
        result = evaluate(fit_knn(cfg, knn, progress=False), cfg, device="cpu", progress=False)
        out.update({c: (result.per_class[c]["image_auroc"] * 100, result.per_class[c]["pixel_auroc"] * 100)
                    for c in classes})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bank", choices=["per-class", "shared"], default="per-class")
    p.add_argument("--seed", type=int, default=0, help="coreset start, projection and the random-init teacher")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="knn.KEY=VALUE")
    args = p.parse_args()
    rest, settings = split_settings(args.overrides)
    if rest:
        p.error(f"only knn.* settings are accepted here, got {rest}")
    knn = KnnConfig().with_overrides(settings.get("knn", {}))
    print(f"teacher tf_efficientnet_lite0 @ 128 px, bank {args.bank}, {knn}")
    print("| teacher (I-AUROC / P-AUROC) | " + " | ".join(CLASSES) + " | mean |")
    print("|---" * (len(CLASSES) + 2) + "|")
    for weights, label in (("imagenet", "ImageNet"), (None, "random init")):
        rows = probe(weights, args.bank, knn, args.seed)
        cells = " | ".join(f"{rows[c][0]:.1f} / {rows[c][1]:.1f}" for c in CLASSES)
        mean_i, mean_p = np.mean([rows[c][0] for c in CLASSES]), np.mean([rows[c][1] for c in CLASSES])
        print(f"| {label} | {cells} | {mean_i:.1f} / {mean_p:.1f} |", flush=True)


if __name__ == "__main__":
    main()
