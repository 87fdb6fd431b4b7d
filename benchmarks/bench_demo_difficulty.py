"""Is the demo dataset hard enough that the teacher's pretraining matters? A training-free probe.

For each demo class, every test patch feature of the frozen teacher (scale 2, stride 8) is scored by its
distance to the nearest train-patch feature of the same class (a memory-bank kNN, as in PatchCore without
coreset sampling); the map is upsampled to the image and its max is the image score. We compare the
ImageNet teacher of the ``demo`` preset (``tf_efficientnet_lite0``, offline wheel) with the same network at
random init. No training, so it runs in seconds on a CPU; it probes the data, not Omni-AD itself.

    python benchmarks/bench_demo_difficulty.py --size 128
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from omniad_lite.data import AnomalyDataset, load_samples, make_demo_dataset
from omniad_lite.data import Preprocess
from omniad_lite.model.encoder import FrozenEncoder, encoder_mean_std

ENCODER = "tf_efficientnet_lite0"
SCALE = 1  # index into the three teacher scales: stride 8
BATCH = 32


@torch.no_grad()
def features(encoder: FrozenEncoder, ds: AnomalyDataset) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Patch features ``(N, C, h, w)``, masks ``(N, S, S)`` and labels ``(N,)`` of a dataset."""
    feats, masks, labels = [], [], []
    for batch in torch.utils.data.DataLoader(ds, batch_size=BATCH):
        feats.append(encoder(batch["image"])[SCALE])  # (B, C, h, w)
        masks.append(batch["mask"][:, 0].numpy())
        labels.append(batch["label"].numpy())
    return torch.cat(feats), np.concatenate(masks), np.concatenate(labels)


def class_scores(encoder: FrozenEncoder, train: AnomalyDataset, test: AnomalyDataset, size: int) -> tuple:
    bank, _, _ = features(encoder, train)
    bank = bank.permute(0, 2, 3, 1).reshape(-1, bank.shape[1])  # (N*h*w, C)
    f, masks, labels = features(encoder, test)
    n, c, h, w = f.shape
    query = f.permute(0, 2, 3, 1).reshape(-1, c)  # (n*h*w, C)
    dist = torch.cdist(query, bank).min(dim=1).values.reshape(n, 1, h, w)
    maps = F.interpolate(dist, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()
    image_auroc = roc_auc_score(labels, maps.reshape(n, -1).max(axis=1))
    pixel_auroc = roc_auc_score(masks.ravel() > 0, maps.ravel())
    return image_auroc, pixel_auroc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128, help="input side (demo preset: 128)")
    p.add_argument("--seed", type=int, default=0, help="demo dataset seed; also the random-init seed")
    args = p.parse_args()
    mean, std = encoder_mean_std(ENCODER)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_dataset(Path(tmp) / "demo", seed=args.seed, verbose=False)
        classes = sorted({s.cls_name for s in load_samples(root, "mvtec", "train")})
        rows = {}
        for weights in ("imagenet", None):
            torch.manual_seed(args.seed)
            encoder = FrozenEncoder(ENCODER, weights=weights).eval()
            for cls in classes:
                train = AnomalyDataset(load_samples(root, "mvtec", "train", [cls]), Preprocess(args.size, mean, std))
                test = AnomalyDataset(load_samples(root, "mvtec", "test", [cls]), Preprocess(args.size, mean, std))
                rows[(str(weights), cls)] = class_scores(encoder, train, test, args.size)
    print(f"| teacher ({ENCODER}, {args.size}px) | " + " | ".join(classes) + " | mean |")
    print("|---" * (len(classes) + 2) + "|")
    for weights in ("imagenet", "None"):
        cells = [rows[(weights, c)] for c in classes]
        mean_i, mean_p = np.mean([x[0] for x in cells]), np.mean([x[1] for x in cells])
        body = " | ".join(f"{100 * i:.1f} / {100 * px:.1f}" for i, px in cells)
        print(f"| {'ImageNet' if weights == 'imagenet' else 'random init'} (I-AUROC / P-AUROC) | {body} | "
              f"{100 * mean_i:.1f} / {100 * mean_p:.1f} |")


if __name__ == "__main__":
    main()
