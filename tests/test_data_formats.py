"""load_samples on tiny fixtures in each real layout: counts, labels, masks, class lists, auto-detection."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import build_mvtec, build_realiad, build_visa

from omniad_lite.data import Sample, detect_format, load_samples


@pytest.mark.parametrize("fmt", ["meta", "mvtec", "realiad", "visa"])
def test_counts_labels_classes(dataset_root, fmt: str) -> None:
    tmp_path, expected = dataset_root(fmt)
    assert detect_format(tmp_path) == fmt
    for f in (fmt, "auto"):
        train = load_samples(tmp_path, f, "train")
        test = load_samples(tmp_path, f, "test")
        assert len(train) == expected["train"] and len(test) == expected["test"]
        assert sorted({s.cls_name for s in train}) == expected["classes"]
        assert all(s.label == 0 and s.mask_path is None and s.defect == "good" for s in train)
        anomalous = [s for s in test if s.label == 1]
        assert len(anomalous) == expected["test_anomalous"]
        for s in test:
            assert Path(s.image_path).is_file()
            assert (s.mask_path is not None) == (s.label == 1)
            if s.mask_path:
                assert Path(s.mask_path).is_file()
    # classes filter keeps only the asked class
    one = expected["classes"][0]
    assert {s.cls_name for s in load_samples(tmp_path, fmt, "test", [one])} == {one}


def test_mvtec_mask_pairs_image(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    test = load_samples(tmp_path, "mvtec", "test", ["grid"])
    crack = [s for s in test if s.defect == "crack"]
    assert [Path(s.mask_path).name for s in crack] == ["000_mask.png", "001_mask.png"]
    for s in crack:
        assert Path(s.mask_path).parent == tmp_path.resolve() / "grid" / "ground_truth" / "crack"
        assert Path(s.mask_path).name == Path(s.image_path).stem + "_mask.png"
    assert isinstance(test[0], Sample)


def test_mvtec_custom_class_names(tmp_path: Path) -> None:
    build_mvtec(tmp_path)
    (tmp_path / "bottle").rename(tmp_path / "my_part_7")
    assert "my_part_7" in {s.cls_name for s in load_samples(tmp_path, "mvtec", "train")}


def test_visa_rows(tmp_path: Path) -> None:
    build_visa(tmp_path)
    test = load_samples(tmp_path, "visa", "test", ["pcb1"])
    assert [s.label for s in test] == [1, 1, 0]  # sorted by path: Anomaly/ before Normal/
    assert all(s.image_path.endswith(".JPG") for s in test)
    assert {s.defect for s in test} == {"anomaly", "good"}


def test_realiad_views_and_null_masks(tmp_path: Path) -> None:
    build_realiad(tmp_path)
    test = load_samples(tmp_path, "realiad", "test", ["usb"])
    # sample 5 ("QS") has mask_path null -> normal; sample 4 ("AK") anomalous
    assert sorted((s.defect, s.label) for s in test) == [("AK", 1)] * 2 + [("good", 0)] * 4
    only_c2 = load_samples(tmp_path, "realiad", "test", ["usb"], views=[2])
    assert len(only_c2) == 3 and all("_C2_" in s.image_path for s in only_c2)
    train = load_samples(tmp_path, "realiad", "train", resolution="realiad_256",
                         json_dir="realiad_jsons/realiad_jsons", views=[1, 2, 3, 4, 5])
    assert len(train) == 8


def test_validate_reads_headers(tmp_path: Path) -> None:
    build_visa(tmp_path)
    assert len(load_samples(tmp_path, "visa", "test", validate=True)) == 6
