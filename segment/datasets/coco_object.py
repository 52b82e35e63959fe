"""COCO-Object as mmsegmentation-based open-vocabulary code converts COCO-Stuff: background + 80 things."""

from __future__ import annotations

from pathlib import Path

from segment.datasets.base import SegDataset, identity_table
from segment.datasets.coco_stuff import COCO_THINGS, coco_items

COCO_OBJECT_CLASSES = ["background", *COCO_THINGS]  # mask value = index: 0 = every stuff pixel, k = thing k - 1
SUFFIX = "_instanceTrainIds.png"


def open_coco_object(root: Path | str, split: str = "val") -> SegDataset:
    """COCO-Object: images/{split}2017/X.jpg and annotations/{split}2017/X_instanceTrainIds.png."""
    items = coco_items(Path(root), split, SUFFIX, "coco-object")
    return SegDataset("coco-object", COCO_OBJECT_CLASSES, items, identity_table(len(COCO_OBJECT_CLASSES)), split)
