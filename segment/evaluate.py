"""Evaluate a segmenter on a labelled benchmark: one confusion matrix over all labelled pixels, mIoU and pAcc."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from segment.datasets.base import CorruptSampleError, Sample, SegDataset
from segment.eval_protocol import check_protocol, predict_with_protocol
from segment.metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy
from segment.segmenter import Protocol, Segmenter, check_concepts


@dataclass
class Example:
    """One evaluated image kept for overlays."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8
    truth: np.ndarray  # (H, W) uint8, 255 = ignore
    prediction: np.ndarray  # (H, W) int64 class indices


@dataclass
class EvalResult:
    """What one evaluation measured: the confusion matrix and everything derived from it, with timings."""

    dataset: str
    split: str
    segmenter: str
    protocol: Protocol
    classes: list[str]
    confusion: np.ndarray  # (C, C) int64, rows = truth, columns = prediction
    images: int
    skipped: dict[str, int]  # reason -> count
    seconds: float
    examples: list[Example] = field(default_factory=list)

    @property
    def iou(self) -> np.ndarray:
        """(C,) IoU per class; NaN for classes absent from truth and prediction."""
        return iou_per_class(self.confusion)

    @property
    def miou(self) -> float:
        """Mean IoU over the classes present in truth or prediction."""
        return mean_iou(self.confusion) if np.isfinite(self.iou).any() else float("nan")

    @property
    def pixel_accuracy(self) -> float:
        """Fraction of labelled pixels predicted correctly."""
        return pixel_accuracy(self.confusion)

    @property
    def images_per_second(self) -> float:
        """Evaluated images per second of wall time (loading included)."""
        return self.images / self.seconds if self.seconds > 0 else float("nan")

    def to_json(self) -> dict:
        """A JSON-ready dict (NaN written as null); examples are left out."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "segmenter": self.segmenter,
            "protocol": asdict(self.protocol),
            "miou": _number(self.miou),
            "pixel_accuracy": _number(self.pixel_accuracy),
            "images": self.images,
            "skipped": dict(self.skipped),
            "seconds": round(self.seconds, 3),
            "images_per_second": _number(self.images_per_second),
            "classes": list(self.classes),
            "iou": {c: _number(v) for c, v in zip(self.classes, self.iou.tolist(), strict=True)},
            "truth_pixels": dict(zip(self.classes, self.confusion.sum(1).tolist(), strict=True)),
            "predicted_pixels": dict(zip(self.classes, self.confusion.sum(0).tolist(), strict=True)),
            "confusion": self.confusion.tolist(),
        }

    def table(self) -> str:
        """A plain-text per-class IoU table followed by mIoU and pixel accuracy."""
        width = max(len("class"), *(len(c) for c in self.classes))
        lines = [f"{'class':<{width}}  {'IoU %':>6}  {'pixels':>10}"]
        for name, iou, pixels in zip(self.classes, self.iou, self.confusion.sum(1), strict=True):
            lines.append(f"{name:<{width}}  {_percent(iou):>6}  {pixels:>10}")
        skipped = sum(self.skipped.values())
        lines.append(
            f"mIoU {_percent(self.miou)} %, pAcc {_percent(self.pixel_accuracy)} % over {self.images} images "
            f"({skipped} skipped) in {self.seconds:.1f} s ({self.images_per_second:.2f} images/s)"
        )
        return "\n".join(lines)


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def evaluate(
    segmenter: Segmenter,
    dataset: SegDataset,
    concepts: Sequence[str] | None = None,
    protocol: Protocol | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    keep: int = 4,
    progress: bool = True,
) -> EvalResult:
    """Segment the first `limit` samples of `dataset` (all by default) into `concepts` (default: its classes,
    prediction index = class index) as `protocol` says (default: the segmenter's own); corrupt samples are
    counted by reason and skipped."""
    concepts = check_concepts(dataset.classes if concepts is None else concepts)
    if len(concepts) != len(dataset.classes):
        raise ValueError(
            f"{len(concepts)} concepts for the {len(dataset.classes)} classes of {dataset.name!r}: "
            "prediction index i must name class i"
        )
    protocol = check_protocol(segmenter.protocol if protocol is None else protocol)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be non-negative, got {limit}")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    num = len(concepts)
    confusion = np.zeros((num, num), np.int64)
    skipped: Counter[str] = Counter()
    examples: list[Example] = []
    images = 0
    start = time.perf_counter()
    batch: list[Sample] = []

    def flush() -> None:
        nonlocal confusion, images
        segs = predict_with_protocol(segmenter, [s.image for s in batch], concepts, protocol, batch_size)
        for sample, seg in zip(batch, segs, strict=True):
            prediction = seg.labels  # (H, W) int64
            if prediction.size and (prediction.min() < 0 or prediction.max() >= num):
                raise ValueError(f"segmenter {segmenter.name!r} predicted labels outside 0..{num - 1}")
            confusion += confusion_matrix(prediction, sample.mask, num)
            images += 1
            if len(examples) < keep:
                examples.append(Example(sample.name, sample.image, sample.mask, prediction))
        batch.clear()

    for index in tqdm(range(count), desc=f"eval {dataset.name}", unit="image", disable=not progress):
        try:
            batch.append(dataset[index])
        except CorruptSampleError as error:
            skipped[error.reason] += 1
            continue
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return EvalResult(
        dataset=dataset.name,
        split=getattr(dataset, "split", ""),
        segmenter=segmenter.name,
        protocol=protocol,
        classes=list(dataset.classes),
        confusion=confusion,
        images=images,
        skipped=dict(skipped),
        seconds=time.perf_counter() - start,
        examples=examples,
    )
