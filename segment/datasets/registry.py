"""`open_dataset(kind, root, split)`: one name per benchmark layout and class set."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from segment.datasets.ade20k import open_ade20k
from segment.datasets.base import SegDataset
from segment.datasets.cityscapes import open_cityscapes
from segment.datasets.coco_object import open_coco_object
from segment.datasets.coco_stuff import open_coco_stuff
from segment.datasets.context import open_context
from segment.datasets.toy import open_toy
from segment.datasets.voc import open_voc

OPENERS: dict[str, Callable[..., SegDataset]] = {
    "toy": open_toy,
    "voc": open_voc,  # 21 classes with background
    "voc20": partial(open_voc, background=False),  # background -> ignore
    "context": open_context,  # 60 classes with background
    "context59": partial(open_context, background=False),
    "coco-stuff": open_coco_stuff,  # 171 classes
    "coco-stuff27": partial(open_coco_stuff, coarse=True),
    "coco-object": open_coco_object,  # background + 80 things
    "cityscapes": open_cityscapes,  # 19 classes
    "ade20k": open_ade20k,  # 150 classes
}
DATASET_KINDS = list(OPENERS)


def open_dataset(kind: str, root: Path | str, split: str = "val") -> SegDataset:
    """The benchmark `kind` stored under `root`; ValueError for an unknown kind or split, FileNotFoundError for
    a missing folder or split file."""
    if kind not in OPENERS:
        raise ValueError(f"unknown dataset kind {kind!r}; available: {', '.join(DATASET_KINDS)}")
    return OPENERS[kind](Path(root), split=split)
