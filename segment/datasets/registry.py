"""`open_dataset(kind, root, split)`: one name per benchmark layout and class set."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from pipeline.core.registry import Registry
from segment.datasets.ade20k import open_ade20k
from segment.datasets.base import SegDataset
from segment.datasets.cityscapes import open_cityscapes
from segment.datasets.coco_object import open_coco_object
from segment.datasets.coco_stuff import open_coco_stuff
from segment.datasets.context import open_context
from segment.datasets.toy import open_toy
from segment.datasets.voc import open_voc

DATASETS: Registry[SegDataset] = Registry("dataset kind")
DATASETS.add("toy", open_toy)
DATASETS.add("voc", open_voc)  # 21 classes with background
DATASETS.add("voc20", partial(open_voc, background=False))  # background -> ignore
DATASETS.add("context", open_context)  # 60 classes with background
DATASETS.add("context59", partial(open_context, background=False))
DATASETS.add("coco-stuff", open_coco_stuff)  # 171 classes
DATASETS.add("coco-stuff27", partial(open_coco_stuff, coarse=True))
DATASETS.add("coco-object", open_coco_object)  # background + 80 things
DATASETS.add("cityscapes", open_cityscapes)  # 19 classes
DATASETS.add("ade20k", open_ade20k)  # 150 classes
DATASET_KINDS = DATASETS.names()


def open_dataset(kind: str, root: Path | str, split: str = "val") -> SegDataset:
    """The benchmark `kind` stored under `root`; ValueError for an unknown kind or split, FileNotFoundError for
    a missing folder or split file."""
    return DATASETS.create(kind, Path(root), split=split)
