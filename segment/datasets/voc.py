"""PASCAL VOC 2012: JPEGImages/, SegmentationClass/ palette PNGs, ImageSets/Segmentation/{split}.txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segment.datasets.base import (
    CorruptSampleError,
    SegDataset,
    check_split,
    identity_table,
    read_id_list,
    reduce_zero_table,
    require_dir,
)

VOC_CLASSES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]
SPLITS = ("train", "val", "trainval")


def voc_palette() -> np.ndarray:
    """(256, 3) uint8 colours of the VOC palette: label bits spread over the high bits of R, G and B."""
    labels = np.arange(256)
    colours = np.zeros((256, 3), np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (labels >> (3 * shift + channel)) & 1
            colours[:, channel] |= bit << (7 - shift)
    return colours.astype(np.uint8)


class VOCDataset(SegDataset):
    """VOC masks: palette PNGs are read as indices; RGB renderings are mapped back through the VOC palette."""

    def read_mask(self, path: Path) -> np.ndarray:
        """(H, W) raw labels; an RGB mask is decoded colour by colour (unknown colours become ignore)."""
        if not path.is_file():
            raise CorruptSampleError("missing mask", path)
        try:
            with Image.open(path) as picture:
                if picture.mode in ("P", "L"):
                    return np.asarray(picture)
                rgb = np.asarray(picture.convert("RGB")).astype(np.int64)  # (H, W, 3)
        except (OSError, ValueError, SyntaxError) as error:
            raise CorruptSampleError("unreadable mask", path) from error
        palette = voc_palette().astype(np.int64)
        keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]  # (256,)
        lookup = dict(zip(keys[: len(VOC_CLASSES)].tolist(), range(len(VOC_CLASSES)), strict=True))
        lookup[int(keys[255])] = 255
        flat = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # (H, W)
        values, inverse = np.unique(flat, return_inverse=True)
        labels = np.array([lookup.get(int(v), 255) for v in values], np.uint8)
        return labels[inverse].reshape(flat.shape)


def voc_layout_items(
    root: Path | str, year: int, kind: str, label: str, masks: str, id_lists: str, split: str, splits: tuple
) -> list[tuple[str, Path, Path]]:
    """(id, image, mask) of a benchmark in VOC's layout under `root` (VOC{year}/ itself, or a folder holding
    VOCdevkit/VOC{year} or VOC{year}/): JPEGImages/, the `masks` folder and ImageSets/`id_lists`/{split}.txt."""
    root = Path(root)
    for candidate in (root / "VOCdevkit" / f"VOC{year}", root / f"VOC{year}"):
        if candidate.is_dir():
            root = candidate
            break
    check_split(kind, split, splits)
    require_dir(root, label)
    image_dir = require_dir(root / "JPEGImages", f"{label} images")
    mask_dir = require_dir(root / masks, f"{label} masks")
    ids = read_id_list(root / "ImageSets" / id_lists / f"{split}.txt")
    return [(i, image_dir / f"{i}.jpg", mask_dir / f"{i}.png") for i in ids]


def open_voc(root: Path | str, split: str = "val", background: bool = True) -> SegDataset:
    """VOC 2012 under `root` (VOC2012/ itself, or a folder holding VOCdevkit/VOC2012 or VOC2012/)."""
    items = voc_layout_items(root, 2012, "voc", "VOC", "SegmentationClass", "Segmentation", split, SPLITS)
    if background:
        return VOCDataset("voc", VOC_CLASSES, items, identity_table(len(VOC_CLASSES)), split)
    return VOCDataset("voc20", VOC_CLASSES[1:], items, reduce_zero_table(len(VOC_CLASSES) - 1), split)
