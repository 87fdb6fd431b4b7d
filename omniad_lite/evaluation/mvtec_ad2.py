"""The MVTec AD 2 protocol: AU-PRO up to FPR 0.05 and SegF1 at a threshold from normal validation images.

Sources (docs/evaluation.md, "MVTec AD 2"): the dataset paper (Heckler-Kram et al., arXiv 2503.21622) reports, per
scenario, the AU-PRO integrated up to a false-positive rate of 0.05 and a segmentation F1 (SegF1) of
binarised maps whose threshold is chosen without anomalous images; the dataset authors' public code
(``MVTecAD2_public_code_utils``) fixes the submission format (:mod:`.submission`). What each number here is:

- ``aupro_05``: the MVTec-AD reference AU-PRO (the kit protocol's, :class:`~.curves.PixelSets`: 8-connected
  regions, PRO averaged over all regions of all images, FPR over all normal pixels, exact curve) integrated from
  FPR 0 to :data:`FPR_LIMIT` = 0.05 and divided by 0.05.
- ``threshold``: per class, ``mean + 3·std`` of every map value of the class's normal validation images
  (:data:`THRESHOLD_STDS`), the binarisation used by the published MVTec AD 2 submissions we could read (e.g.
  RoBiS, arXiv 2505.21152, "mean+3std"); the paper's own threshold rule could not be read from the stored
  material, so this is the kit's documented choice.
- ``seg_f1``: a pixel is predicted anomalous when its map value is ``>= threshold``; over every pixel of every
  test image of the class (pooled, not averaged per image), ``F1 = 2·TP / (2·TP + FP + FN)``; also
  ``seg_precision`` and ``seg_recall``. Pooling over pixels is our reading; the authors' server code is not public.
- ``image_auroc``: for context, from the image score (max of the map).

Where we differ from the official evaluation: the maps and masks are compared at the network size S×S (masks
resized as for every dataset, :mod:`omniad_lite.data.images`), not at each image's full resolution; the server
scores full-size maps (what ``omniad-lite submission`` writes). Numbers here are a development estimate.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from ..results import MEAN_ROW, EvalResult
from .curves import PixelSets, rank_metrics
from .inference import iter_maps
from .tables import TABLE_DECIMALS, TABLE_SCALE

PROTOCOL = "mvtec_ad2"
FPR_LIMIT = 0.05  # AU-PRO integration limit of MVTec AD 2 (arXiv 2503.21622)
THRESHOLD_STDS = 3.0  # threshold = mean + 3 std of the validation normals' map values
COLUMNS = ("image_auroc", "aupro_05", "seg_f1", "seg_precision", "seg_recall")
PERCENT = COLUMNS  # shown in percent; "threshold" stays a map value


def validation_threshold(maps: np.ndarray) -> float:
    """``mean + THRESHOLD_STDS · std`` of every value of ``(N, H, W)`` normal maps (float64 sums)."""
    values = np.asarray(maps, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("no validation maps to choose the MVTec AD 2 threshold from; the class needs normal "
                         "images in <class>/validation/good/")
    return float(values.mean() + THRESHOLD_STDS * values.std())


def segmentation_f1(maps: np.ndarray, masks: np.ndarray, threshold: float) -> dict[str, float]:
    """Pooled pixel F1, precision and recall of ``maps >= threshold`` against ``masks`` (any non-zero = anomalous)."""
    pred, gt = np.asarray(maps) >= threshold, np.asarray(masks) != 0
    tp = float(np.count_nonzero(pred & gt))
    fp = float(np.count_nonzero(pred & ~gt))
    fn = float(np.count_nonzero(~pred & gt))
    nan = float("nan")
    return {"seg_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan,
            "seg_precision": tp / (tp + fp) if tp + fp else nan, "seg_recall": tp / (tp + fn) if tp + fn else nan}


def aupro_05(maps: np.ndarray, masks: np.ndarray) -> float:
    """AU-PRO integrated up to FPR 0.05, divided by 0.05 (NaN without anomalous or normal pixels)."""
    gt = np.asarray(masks) != 0
    if not gt.any() or gt.all():
        return float("nan")
    return PixelSets(np.asarray(maps, dtype=np.float32), gt).kit_aupro(FPR_LIMIT)


def class_metrics(maps, masks, scores, labels, threshold: float) -> dict[str, float]:
    """The protocol's numbers for one class (fractions; ``threshold`` as a map value)."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    auroc = float("nan")
    if labels.any() and (~labels).any():
        auroc = rank_metrics(np.sort(scores[labels]), np.sort(scores[~labels]))[0]
    return {"image_auroc": auroc, "aupro_05": aupro_05(maps, masks),
            **segmentation_f1(maps, masks, threshold), "threshold": threshold}


def collect(model, dataset, *, device="auto", batch_size: int = 16, progress: bool = True,
            desc: str = "maps") -> dict[str, dict[str, list]]:
    """Per class: ``maps`` (S, S) float32, ``masks`` (S, S) bool, ``scores``, ``labels``, ``paths`` of ``dataset``."""
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch, maps, scores in iter_maps(model, loader, device=device, progress=progress, desc=desc,
                                         total=len(loader)):
        masks = batch["mask"].numpy()[:, 0] > 0.5  # (B, S, S)
        for i, cls in enumerate(batch["cls_name"]):
            for key, value in (("maps", maps[i]), ("masks", masks[i]), ("scores", float(scores[i])),
                               ("labels", int(batch["label"][i])), ("paths", batch["path"][i])):
                out[cls][key].append(value)
    return out


def validation_thresholds(model, cfg, *, device="auto", batch_size: int | None = None,
                          progress: bool = True) -> dict[str, float]:
    """Per class, :func:`validation_threshold` of the model's maps of the normal validation images."""
    from ..data import dataset_from_config

    val = dataset_from_config(cfg.data, "val", model.preprocess, progress=progress)
    per_class = collect(model, val, device=device, batch_size=batch_size or cfg.train.batch_size,
                        progress=progress, desc="validation maps")
    return {cls: validation_threshold(np.stack(d["maps"])) for cls, d in sorted(per_class.items())}


def table_of(per_class: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per class and a ``mean`` row; the metrics in percent, the threshold as a map value."""
    df = pd.DataFrame.from_dict(per_class, orient="index")[[*COLUMNS, "threshold"]]
    df[list(PERCENT)] *= TABLE_SCALE
    df.loc[MEAN_ROW] = df.mean(axis=0, skipna=False)
    df.loc[MEAN_ROW, "threshold"] = np.nan  # a mean of per-class thresholds means nothing
    df.index.name = "class"
    df[list(PERCENT)] = df[list(PERCENT)].round(TABLE_DECIMALS)
    df.attrs["protocol"] = PROTOCOL
    return df


def evaluate_mvtec_ad2(model, cfg, *, device="auto", batch_size: int | None = None,
                       progress: bool = True) -> EvalResult:
    """The MVTec AD 2 protocol on ``test_public`` (``cfg.data`` must be an MVTec AD 2 root) as an EvalResult."""
    from ..data import dataset_from_config
    from ..data.factory import own_validation_split

    if cfg.data.root is None or own_validation_split(cfg.data.root, cfg.data.format) is None:
        raise ValueError(f"protocol {PROTOCOL!r} needs an MVTec AD 2 root (data.format=mvtec_ad2); the run's data "
                         f"is {cfg.data.root or 'the demo dataset'} ({cfg.data.format}): use --protocol kit")
    thresholds = validation_thresholds(model, cfg, device=device, batch_size=batch_size, progress=progress)
    test = dataset_from_config(cfg.data, "test", model.preprocess, progress=progress)
    data = collect(model, test, device=device, batch_size=batch_size or cfg.train.batch_size, progress=progress,
                   desc="test_public maps")
    per_class = {cls: class_metrics(np.stack(d["maps"]), np.stack(d["masks"]), d["scores"], d["labels"],
                                    thresholds[cls]) for cls, d in sorted(data.items())}
    rows = [{"path": p, "cls_name": cls, "label": y, "score": s, "mask_valid": True}
            for cls, d in sorted(data.items()) for p, y, s in zip(d["paths"], d["labels"], d["scores"])]
    return EvalResult(table=table_of(per_class), per_class=per_class, per_image=pd.DataFrame(rows),
                      protocol=PROTOCOL, mode="exact")
