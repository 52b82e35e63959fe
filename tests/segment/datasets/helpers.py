"""Tiny benchmark fixtures: random images and hand-made masks written in each dataset's own layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segment.datasets.voc import voc_palette


def write_image(path: Path, height: int, width: int, seed: int = 0, suffix_format: str | None = None) -> np.ndarray:
    """A random RGB image at `path` (JPEG or PNG by suffix); returns its pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=suffix_format)
    return pixels


def write_mask(path: Path, mask: np.ndarray, palette: bool = False) -> None:
    """A single-channel (or VOC palette) PNG of `mask` values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(mask.astype(np.uint8))  # mode L
    if palette:
        picture = picture.convert("P")
        picture.putpalette(voc_palette().reshape(-1).tolist())
    picture.save(path, format="PNG")


def stripes(height: int, width: int, values: list[int]) -> np.ndarray:
    """(H, W) uint8 mask of vertical stripes, one per value."""
    columns = np.array_split(np.arange(width), len(values))
    mask = np.zeros((height, width), np.uint8)
    for cols, value in zip(columns, values, strict=True):
        mask[:, cols] = value
    return mask
