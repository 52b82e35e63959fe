"""PASCAL Context as mmsegmentation lays it out: JPEGImages, SegmentationClassContext, ImageSets/SegmentationContext."""

from __future__ import annotations

from pathlib import Path

from segment.datasets.base import SegDataset, identity_table, reduce_zero_table
from segment.datasets.voc import voc_layout_items

CONTEXT_CLASSES = [  # 60: background, then the 59 most frequent classes (mask value = index)
    "background",
    "aeroplane",
    "bag",
    "bed",
    "bedclothes",
    "bench",
    "bicycle",
    "bird",
    "boat",
    "book",
    "bottle",
    "building",
    "bus",
    "cabinet",
    "car",
    "cat",
    "ceiling",
    "chair",
    "cloth",
    "computer",
    "cow",
    "cup",
    "curtain",
    "dog",
    "door",
    "fence",
    "floor",
    "flower",
    "food",
    "grass",
    "ground",
    "horse",
    "keyboard",
    "light",
    "motorbike",
    "mountain",
    "mouse",
    "person",
    "plate",
    "platform",
    "pottedplant",
    "road",
    "rock",
    "sheep",
    "shelves",
    "sidewalk",
    "sign",
    "sky",
    "snow",
    "sofa",
    "table",
    "track",
    "train",
    "tree",
    "truck",
    "tvmonitor",
    "wall",
    "water",
    "window",
    "wood",
]
SPLITS = ("train", "val")


def open_context(root: Path | str, split: str = "val", background: bool = True) -> SegDataset:
    """PASCAL Context under `root` (VOC2010/ itself, or a folder holding VOCdevkit/VOC2010 or VOC2010/)."""
    items = voc_layout_items(
        root, 2010, "context", "PASCAL Context", "SegmentationClassContext", "SegmentationContext", split, SPLITS
    )
    if background:
        return SegDataset("context", CONTEXT_CLASSES, items, identity_table(len(CONTEXT_CLASSES)), split)
    return SegDataset("context59", CONTEXT_CLASSES[1:], items, reduce_zero_table(len(CONTEXT_CLASSES) - 1), split)
