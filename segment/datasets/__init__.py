"""Segmentation benchmarks (toy, VOC, Context, COCO-Stuff, COCO-Object, Cityscapes, ADE20K) behind one interface."""

from segment.datasets.base import CorruptSampleError, Sample, SegDataset
from segment.datasets.registry import DATASET_KINDS, open_dataset

__all__ = ["DATASET_KINDS", "CorruptSampleError", "Sample", "SegDataset", "open_dataset"]
