"""Each benchmark layout on a tiny fixture: classes, lengths, label mapping (ignore, shifts, palettes), errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segment.datasets import DATASET_KINDS, open_dataset
from segment.datasets.coco_stuff import COARSE_CLASSES, COARSE_GROUPS, COCO_STUFF_CLASSES
from segment.datasets.voc import voc_palette
from tests.segment.datasets.helpers import stripes, write_image, write_mask

H, W = 12, 16


def test_toy_layout(tmp_path: Path) -> None:
    bench = tmp_path / "benchmark"
    for i, name in enumerate(["toy_000001", "toy_000002"]):
        write_image(bench / "images" / f"{name}.jpg", H, W, seed=i)
        write_mask(bench / "masks" / f"{name}.png", stripes(H, W, [0, 2, i]))
    (bench / "classes.txt").write_text("grass\nsky\ncircle\n")
    (bench / "splits").mkdir()
    (bench / "splits" / "val.txt").write_text("toy_000001\ntoy_000002\n")
    for root in (tmp_path, bench):  # the world folder or its benchmark folder
        data = open_dataset("toy", root)
        assert (data.name, data.classes, len(data)) == ("toy", ["grass", "sky", "circle"], 2)
        sample = data[1]
        assert sample.name == "toy_000002" and sample.image.shape == (H, W, 3) and sample.image.dtype == np.uint8
        assert np.array_equal(sample.mask, stripes(H, W, [0, 2, 1]))
    with pytest.raises(ValueError, match=r"unknown split .test.*found: val"):
        open_dataset("toy", tmp_path, split="test")


@pytest.mark.parametrize("rgb", [False, True])
def test_voc_palette_and_background(tmp_path: Path, rgb: bool) -> None:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    raw = stripes(H, W, [0, 1, 15, 20, 255])  # background, aeroplane, person, tvmonitor, border
    write_image(root / "JPEGImages" / "2007_000033.jpg", H, W)
    if rgb:  # a colour rendering of the mask decodes through the palette
        path = root / "SegmentationClass" / "2007_000033.png"
        path.parent.mkdir(parents=True)
        Image.fromarray(voc_palette()[raw]).save(path)
    else:
        write_mask(root / "SegmentationClass" / "2007_000033.png", raw, palette=True)
        assert Image.open(root / "SegmentationClass" / "2007_000033.png").mode == "P"
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n")
    voc = open_dataset("voc", tmp_path)
    assert len(voc.classes) == 21 and voc.classes[15] == "person" and len(voc) == 1
    assert np.array_equal(voc[0].mask, raw)
    voc20 = open_dataset("voc20", root)
    assert len(voc20.classes) == 20 and voc20.classes[0] == "aeroplane"
    assert np.array_equal(voc20[0].mask, stripes(H, W, [255, 0, 14, 19, 255]))
    with pytest.raises(FileNotFoundError, match="split file"):
        open_dataset("voc", root, split="train")


@pytest.mark.parametrize(("kind", "expected"), [("context", [0, 1, 59, 255]), ("context59", [255, 0, 58, 255])])
def test_context(tmp_path: Path, kind: str, expected: list[int]) -> None:
    root = tmp_path / "VOC2010"
    write_image(root / "JPEGImages" / "2008_000002.jpg", H, W)
    write_mask(root / "SegmentationClassContext" / "2008_000002.png", stripes(H, W, [0, 1, 59, 255]))
    (root / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    (root / "ImageSets" / "SegmentationContext" / "val.txt").write_text("2008_000002\n")
    data = open_dataset(kind, tmp_path)
    assert len(data.classes) == (60 if kind == "context" else 59) and data.classes[-1] == "wood"
    assert np.array_equal(data[0].mask, stripes(H, W, expected))


def _coco(tmp_path: Path, suffix: str, values: list[int]) -> Path:
    root = tmp_path / "coco_stuff164k"
    for i, name in enumerate(["000000000139", "000000000285"]):
        write_image(root / "images" / "val2017" / f"{name}.jpg", H, W, seed=i)
        write_mask(root / "annotations" / "val2017" / f"{name}{suffix}", stripes(H, W, values))
    (root / "images" / "train2017").mkdir()
    return root


def test_coco_stuff_fine_and_coarse(tmp_path: Path) -> None:
    _coco(tmp_path, "_labelTrainIds.png", [0, 2, 80, 169, 255])  # person, car, banner, window-other, ignore
    fine = open_dataset("coco-stuff", tmp_path)
    assert len(fine.classes) == 171 and len(fine) == 2 and fine.classes[169] == "window-other"
    assert np.array_equal(fine[0].mask, stripes(H, W, [0, 2, 80, 169, 255]))
    coarse = open_dataset("coco-stuff27", tmp_path)
    assert len(coarse.classes) == 27
    names = [COARSE_CLASSES[v] if v != 255 else None for v in np.unique(coarse[1].mask)]
    assert names == ["person", "vehicle", "textile", "window", None]
    assert sorted(f for group in COARSE_GROUPS.values() for f in group) == sorted(COCO_STUFF_CLASSES)
    with pytest.raises(FileNotFoundError, match="COCO annotations"):
        open_dataset("coco-stuff", tmp_path, split="train")


def test_coco_object(tmp_path: Path) -> None:
    _coco(tmp_path, "_instanceTrainIds.png", [0, 1, 80, 255])
    data = open_dataset("coco-object", tmp_path / "coco_stuff164k")
    assert len(data.classes) == 81 and data.classes[:2] == ["background", "person"]
    assert data.classes[80] == "toothbrush" and len(data) == 2
    assert np.array_equal(data[0].mask, stripes(H, W, [0, 1, 80, 255]))


def test_cityscapes(tmp_path: Path) -> None:
    for city, stem in [("aachen", "aachen_000000_000019"), ("bremen", "bremen_000001_000019")]:
        write_image(tmp_path / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png", H, W)
        write_mask(tmp_path / "gtFine" / "val" / city / f"{stem}_gtFine_labelTrainIds.png", stripes(H, W, [0, 18, 19]))
    data = open_dataset("cityscapes", tmp_path)
    assert len(data.classes) == 19 and data.classes[18] == "bicycle"
    assert [data[i].name for i in range(2)] == ["aachen_000000_000019", "bremen_000001_000019"]
    assert np.array_equal(data[1].mask, stripes(H, W, [0, 18, 255]))  # 19 is no class: ignored


def test_ade20k_shift(tmp_path: Path) -> None:
    root = tmp_path / "ADEChallengeData2016"
    write_image(root / "images" / "validation" / "ADE_val_00000001.jpg", H, W)
    write_mask(root / "annotations" / "validation" / "ADE_val_00000001.png", stripes(H, W, [0, 1, 150]))
    data = open_dataset("ade20k", tmp_path, split="validation")
    assert len(data.classes) == 150 and data.classes[0] == "wall" and data.classes[149] == "flag"
    assert np.array_equal(data[0].mask, stripes(H, W, [255, 0, 149]))
    assert len(open_dataset("ade20k", root, split="val")) == 1


def test_every_kind_names_its_missing_folder(tmp_path: Path) -> None:
    assert len(DATASET_KINDS) == 10
    for kind in DATASET_KINDS:
        with pytest.raises(FileNotFoundError, match=r"missing .*folder"):
            open_dataset(kind, tmp_path / "nowhere")


def test_unknown_kind_and_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown dataset kind 'kitti'.*voc20"):
        open_dataset("kitti", tmp_path)
    for kind in ("voc", "context", "coco-stuff", "coco-object", "cityscapes", "ade20k"):
        with pytest.raises(ValueError, match="unknown split 'dev'"):
            open_dataset(kind, tmp_path, split="dev")
