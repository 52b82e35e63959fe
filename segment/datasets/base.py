"""Labelled segmentation benchmarks read lazily from disk: samples, the dataset base class, label tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IGNORE = 255  # the ignore label of every dataset (segment.metrics.IGNORE)


@dataclass
class Sample:
    """One benchmark image and its ground truth."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8 class indices, 255 = ignore


class CorruptSampleError(Exception):
    """A sample that cannot be read; `reason` is the short tag an evaluator counts it under."""

    def __init__(self, reason: str, path: Path | str) -> None:
        super().__init__(f"{reason}: {path}")
        self.reason = reason
        self.path = str(path)


def identity_table(num_classes: int) -> np.ndarray:
    """(256,) uint8 label table keeping 0..num_classes-1 and sending every other value to ignore."""
    table = np.full(256, IGNORE, np.uint8)
    table[:num_classes] = np.arange(num_classes)
    return table


def reduce_zero_table(num_classes: int) -> np.ndarray:
    """(256,) uint8 label table for masks whose 0 means 'no label': 0 -> ignore, k -> k - 1."""
    table = np.full(256, IGNORE, np.uint8)
    table[1 : num_classes + 1] = np.arange(num_classes)
    return table


def require_dir(path: Path, what: str) -> Path:
    """`path` if it is a folder; FileNotFoundError naming it and what it should hold otherwise."""
    if not path.is_dir():
        raise FileNotFoundError(f"missing {what} folder {path}")
    return path


def check_split(kind: str, split: str, splits: Sequence[str]) -> str:
    """`split` if `kind` knows it; ValueError listing the known splits otherwise."""
    if split not in splits:
        raise ValueError(f"unknown split {split!r} for dataset {kind!r}; known: {', '.join(splits)}")
    return split


def read_id_list(path: Path) -> list[str]:
    """Sample ids from a split file, one per line (blank lines skipped); FileNotFoundError if it is absent."""
    if not path.is_file():
        raise FileNotFoundError(f"missing split file {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class SegDataset:
    """A benchmark of (name, image path, mask path) items; images and masks are read only when indexed."""

    def __init__(
        self,
        name: str,
        classes: Sequence[str],
        items: Sequence[tuple[str, Path, Path]],
        table: np.ndarray | None = None,
        split: str = "val",
    ) -> None:
        if not classes:
            raise ValueError(f"dataset {name!r} has no classes")
        self.name = name
        self.split = split
        self.classes = list(classes)
        self.items = list(items)
        self.table = identity_table(len(self.classes)) if table is None else table  # (256,) raw label -> class

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} of a dataset of {len(self)}")
        name, image_path, mask_path = self.items[index]
        image = self.read_image(image_path)
        mask = self.map_labels(self.read_mask(mask_path), mask_path)
        if image.shape[:2] != mask.shape:
            raise CorruptSampleError("image and mask sizes differ", image_path)
        return Sample(name, image, mask)

    def read_image(self, path: Path) -> np.ndarray:
        """(H, W, 3) uint8 RGB pixels of an image file; CorruptSampleError if it is missing or unreadable."""
        if not path.is_file():
            raise CorruptSampleError("missing image", path)
        try:
            with Image.open(path) as picture:
                return np.asarray(picture.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as error:
            raise CorruptSampleError("unreadable image", path) from error

    def read_mask(self, path: Path) -> np.ndarray:
        """(H, W) raw label values of a single-channel (or palette) PNG; CorruptSampleError if missing or unreadable."""
        if not path.is_file():
            raise CorruptSampleError("missing mask", path)
        try:
            with Image.open(path) as picture:
                if picture.mode not in ("P", "L", "I", "I;16"):
                    raise CorruptSampleError("mask is not single-channel", path)
                return np.asarray(picture)
        except (OSError, ValueError, SyntaxError) as error:
            raise CorruptSampleError("unreadable mask", path) from error

    def map_labels(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """(H, W) raw values -> (H, W) uint8 class indices through the label table (255 = ignore)."""
        if raw.size and (raw.min() < 0 or raw.max() > 255):
            raise CorruptSampleError("mask values outside 0..255", path)
        return self.table[raw.astype(np.int64)]

    def __repr__(self) -> str:
        shape = f"{len(self)} samples, {len(self.classes)} classes"
        return f"{type(self).__name__}({self.name!r}, split={self.split!r}, {shape})"
