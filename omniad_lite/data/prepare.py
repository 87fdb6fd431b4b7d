"""What ``data_scripts/prepare_*.py`` do: extract, check the layout, count, validate masks, write meta.json.

Each step is one function so it is testable and callable from a notebook; :func:`prepare_dataset` chains
them and prints what it did. Everything is idempotent: an archive is extracted once (a marker file records
it), and meta.json is rewritten only when its content would change. The meta.json written is the ADer
format the released Omni-AD code reads (github easyoo/Omni-AD ``data/ad_dataset.py``), with paths
relative to the dataset root.
"""
from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
from ..progress import tqdm

from .images import check_pair
from .loading import FORMATS, detect_format, load_samples
from .sample import Sample

DATASET_PAGES = {
    "mvtec": "https://www.mvtec.com/company/research/datasets/mvtec-ad",
    "visa": "https://github.com/amazon-science/spot-diff",
    "realiad": "https://realiad4ad.github.io/Real-IAD/",
    "mvtec_ad2": "https://www.mvtec.com/company/research/datasets/mvtec-ad-2",
}
DATASET_NAMES = {"mvtec": "MVTec-AD", "visa": "VisA", "realiad": "Real-IAD", "mvtec_ad2": "MVTec AD 2"}
# the file each official download page serves (Real-IAD comes as several archives: pass the extracted folder)
DATASET_ARCHIVES = {"mvtec": "mvtec_anomaly_detection.tar.xz", "visa": "VisA_20220922.tar"}
ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar", ".zip")
EXTRACTED_MARKER = ".omniad_extracted"


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(archive: str | Path, dest: str | Path | None = None, log=print) -> Path:
    """Extract ``archive`` into ``dest`` (default: next to it, named after it) once; return ``dest``.

    Args:
        archive: a ``.tar.xz``, ``.tar.gz``, ``.tar`` or ``.zip`` file.
        dest: target folder; a marker file inside it makes later calls skip the extraction.
        log: where progress lines go.
    """
    archive = Path(archive)
    if dest is None:
        name = archive.name
        for suffix in ARCHIVE_SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        dest = archive.parent / name
    dest = Path(dest)
    marker = dest / EXTRACTED_MARKER
    if marker.is_file() and marker.read_text().strip() == archive.name:
        log(f"already extracted: {archive} -> {dest}")
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    log(f"extracting {archive} -> {dest} ...")
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")  # refuses absolute paths and links leaving dest
    marker.write_text(archive.name + "\n")
    return dest


def find_root(path: Path, fmt: str) -> Path | None:
    """``path`` or the folder below it (up to two levels) that is a ``fmt`` root, else ``None``."""
    module = FORMATS[fmt]
    candidates = [path] + sorted(p for p in path.iterdir() if p.is_dir())
    candidates += sorted(q for p in candidates[1:] for q in p.iterdir() if q.is_dir())
    return next((c for c in candidates if module.looks_like(c)), None)


def summarise(train: list[Sample], test: list[Sample]) -> pd.DataFrame:
    """Counts per class: ``train``, ``test_good``, ``test_anomalous`` and the defect types, plus a total row."""
    rows = {}
    for cls in sorted({s.cls_name for s in train + test}):
        t = [s for s in test if s.cls_name == cls]
        rows[cls] = {"train": sum(s.cls_name == cls for s in train),
                     "test_good": sum(s.label == 0 for s in t),
                     "test_anomalous": sum(s.label == 1 for s in t),
                     "defects": ", ".join(sorted({s.defect for s in t if s.label == 1}))}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.loc["total"] = [df["train"].sum(), df["test_good"].sum(), df["test_anomalous"].sum(), ""]
    return df


def validate(samples: list[Sample], progress: bool = True) -> list[str]:
    """Header-read every image and mask; return one message per problem (unreadable file, size mismatch)."""
    problems = []
    for s in tqdm(samples, desc="checking image/mask headers", disable=not progress):
        try:
            check_pair(s.image_path, s.mask_path)
        except (ValueError, RuntimeError, FileNotFoundError) as e:
            problems.append(str(e))
    return problems


def _extra_splits(root: Path, fmt: str, classes: list[str] | None, summary: pd.DataFrame) -> list[Sample]:
    """MVTec AD 2: count its validation and private splits into ``summary`` (in place); their samples to validate."""
    if fmt != "mvtec_ad2":
        return []
    from .formats.mvtec_ad2 import PRIVATE_SPLITS, private_images

    validation = load_samples(root, fmt, "validation", classes)
    summary.insert(1, "validation", [sum(s.cls_name == c for s in validation) for c in summary.index[:-1]] + [0])
    summary.loc["total", "validation"] = len(validation)
    extra = list(validation)
    for split in PRIVATE_SPLITS:
        found = private_images(root, split, classes)
        summary[split] = [len(found.get(c, [])) for c in summary.index[:-1]] + [sum(map(len, found.values()))]
        extra += [Sample(str(p), None, c, split, 0) for c, paths in found.items() for p in paths]
    return extra


def meta_dict(root: str | Path, train: list[Sample], test: list[Sample]) -> dict[str, Any]:
    """ADer meta.json content for the given samples, paths relative to ``root``."""
    root = Path(root).resolve()

    def record(s: Sample) -> dict[str, Any]:
        return {"img_path": Path(s.image_path).relative_to(root).as_posix(),
                "mask_path": Path(s.mask_path).relative_to(root).as_posix() if s.mask_path else "",
                "cls_name": s.cls_name, "specie_name": s.defect, "anomaly": int(s.label)}

    out: dict[str, Any] = {}
    for split, samples in (("train", train), ("test", test)):
        out[split] = {}
        for s in samples:
            out[split].setdefault(s.cls_name, []).append(record(s))
    return out


def write_meta(root: str | Path, train: list[Sample], test: list[Sample], path: str | Path | None = None) -> bool:
    """Write ``meta.json`` (default ``<root>/meta.json``); returns False when it already held this content."""
    path = Path(path) if path else Path(root) / "meta.json"
    text = json.dumps(meta_dict(root, train, test), indent=1) + "\n"
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def prepare_dataset(source: str | Path, fmt: str, *, dest: str | Path | None = None, write_meta_file: bool = False,
                    classes: list[str] | None = None, progress: bool = True, log=print,
                    **options: Any) -> dict[str, Any]:
    """Extract (if an archive), check the layout, count, validate and optionally write meta.json.

    Args:
        source: the downloaded archive or the extracted folder.
        fmt: ``"mvtec"``, ``"visa"``, ``"realiad"`` or ``"mvtec_ad2"`` (also counts and checks its validation and
            private splits).
        dest: where to extract an archive (default: next to it).
        write_meta_file: also write an ADer ``meta.json`` into the root.
        classes: classes to check (default: all).
        progress: progress bar while checking headers.
        log: where the report lines go.
        **options: format options (Real-IAD ``resolution``, ``json_dir``, ``views``).

    Returns:
        ``{"root", "summary" (DataFrame), "problems" (list of str), "meta_written" (bool or None)}``.
    """
    name, page = DATASET_NAMES[fmt], DATASET_PAGES[fmt]
    source = Path(source).expanduser()
    if not source.exists():
        what = f"the archive {DATASET_ARCHIVES[fmt]}" if fmt in DATASET_ARCHIVES else "the archives"
        raise FileNotFoundError(f"{source} does not exist. Download {what} of {name} from {page} and pass "
                                f"its path or the extracted folder")
    folder = extract(source, dest, log) if is_archive(source) else source
    if not folder.is_dir():
        raise ValueError(f"{source} is neither a folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    root = find_root(folder, fmt)
    if root is None:
        other = detect_format(folder)
        hint = f"; it looks like format {other!r}" if other else ""
        raise ValueError(f"{folder} is not a {name} dataset: expected {FORMATS[fmt].EXPECTED} in it or one "
                         f"level below{hint}. Get {name} from {page}")
    log(f"{name} root: {root}")
    train = load_samples(root, fmt, "train", classes, **options)
    test = load_samples(root, fmt, "test", classes, **options)
    summary = summarise(train, test)
    extra = _extra_splits(root, fmt, classes, summary)
    log(summary.to_string())
    problems = validate(train + test + extra, progress)
    if problems:
        log(f"{len(problems)} problem(s):")
        for p in problems:
            log(f"  {p}")
    else:
        log(f"all {len(train) + len(test) + len(extra)} images readable; every anomalous image has a mask of its size")
    written = None
    if write_meta_file:
        written = write_meta(root, train, test)
        log(f"{'wrote' if written else 'unchanged'}: {root / 'meta.json'}")
    return {"root": root, "summary": summary, "problems": problems, "meta_written": written}


def script_main(fmt: str, argv: list[str] | None = None) -> int:
    """The shared command line of ``data_scripts/prepare_<fmt>.py``; returns the exit code."""
    import argparse
    import sys

    name = DATASET_NAMES[fmt]
    p = argparse.ArgumentParser(description=f"Check a {name} download ({DATASET_PAGES[fmt]}): extract, count "
                                            f"per class and split, validate masks, optionally write meta.json.")
    p.add_argument("source", help=f"the {name} archive (.tar.xz/.tar/.zip) or extracted folder")
    p.add_argument("--dest", help="where to extract an archive (default: next to it)")
    p.add_argument("--write-meta", action="store_true", help="write an ADer meta.json into the dataset root")
    p.add_argument("--classes", nargs="+", help="only these classes")
    if fmt == "realiad":
        p.add_argument("--resolution", default="realiad_256", help="resolution folder (default realiad_256)")
        p.add_argument("--json-dir", default="realiad_jsons/realiad_jsons", help="json split folder")
        p.add_argument("--views", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="camera views to keep")
    args = p.parse_args(argv)
    options = {"resolution": args.resolution, "json_dir": args.json_dir, "views": args.views} \
        if fmt == "realiad" else {}
    try:
        report = prepare_dataset(args.source, fmt, dest=args.dest, write_meta_file=args.write_meta,
                                 classes=args.classes, **options)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if report["problems"]:
        return 1
    print(f"ready: train with --data-root {report['root']} --set data.format={fmt}")
    return 0
