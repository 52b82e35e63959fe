"""Cityscapes: leftImg8bit/{split}/{city}/X_leftImg8bit.png and gtFine/{split}/{city}/X_gtFine_labelTrainIds.png."""

from __future__ import annotations

from pathlib import Path

from segment.datasets.base import SegDataset, check_split, identity_table, require_dir

CITYSCAPES_CLASSES = [  # the 19 evaluation classes, train ids 0..18 (255 = ignore)
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
]  # fmt: skip
SPLITS = ("train", "val", "test")
IMAGE_SUFFIX = "_leftImg8bit.png"
MASK_SUFFIX = "_gtFine_labelTrainIds.png"


def open_cityscapes(root: Path | str, split: str = "val") -> SegDataset:
    """Cityscapes under `root` (the folder holding leftImg8bit/ and gtFine/), every city of `split`."""
    root = Path(root)
    check_split("cityscapes", split, SPLITS)
    images = require_dir(root / "leftImg8bit" / split, "Cityscapes images")
    masks = require_dir(root / "gtFine" / split, "Cityscapes labels")
    items = []
    for path in sorted(images.glob(f"*/*{IMAGE_SUFFIX}")):
        stem = path.name[: -len(IMAGE_SUFFIX)]
        items.append((stem, path, masks / path.parent.name / f"{stem}{MASK_SUFFIX}"))
    return SegDataset("cityscapes", CITYSCAPES_CLASSES, items, identity_table(len(CITYSCAPES_CLASSES)), split)
