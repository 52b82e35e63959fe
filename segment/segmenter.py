"""The Segmenter contract (HxWx3 uint8 RGB in; per-concept score maps and labels out) and the segmenter registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.core.registry import Registry


@dataclass
class Segmentation:
    """One image's result: per-concept scores (higher = more likely) and the label map (indices into `concepts`)."""

    concepts: list[str]
    scores: torch.Tensor  # (C, H, W) float32
    labels: np.ndarray  # (H, W) int64


@dataclass(frozen=True)
class Protocol:
    """How an evaluation feeds images to a segmenter: whole image, short side resized, or a sliding window."""

    mode: str = "whole"  # "whole" | "resize" (short side to `size`) | "slide" (`size` windows at `stride`)
    size: int | None = None
    stride: int | None = None


def check_image(image: np.ndarray) -> np.ndarray:
    """The input contract: an (H, W, 3) uint8 RGB array; ValueError naming what was given otherwise."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}".strip()
        raise ValueError(f"a segmenter takes (H, W, 3) uint8 RGB images, got {got}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    return image


def check_concepts(concepts: Sequence[str]) -> list[str]:
    """A non-empty list of distinct concept names."""
    concepts = [str(c) for c in concepts]
    if not concepts:
        raise ValueError("no concepts to segment")
    if len(set(concepts)) != len(concepts):
        raise ValueError(f"duplicate concepts: {concepts}")
    return concepts


def size_batches(images: Sequence[np.ndarray], batch_size: int) -> list[list[int]]:
    """Positions of `images` grouped by (H, W), in chunks of at most `batch_size`, so each chunk stacks."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    groups: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(tuple(image.shape[:2]), []).append(i)
    return [members[s : s + batch_size] for members in groups.values() for s in range(0, len(members), batch_size)]


class Segmenter(ABC):
    """Segments images into named concepts; `predict_batch` is the one method an implementation must provide."""

    name: str = "segmenter"
    protocol: Protocol = Protocol()  # how `coarchive eval` should feed it images

    @abstractmethod
    def predict_batch(self, images: Sequence[np.ndarray], concepts: Sequence[str]) -> list[Segmentation]:
        """Segment each (H, W, 3) uint8 image into `concepts`; one Segmentation per image, at the image's size."""

    def predict(self, image: np.ndarray, concepts: Sequence[str]) -> Segmentation:
        """Segment one image."""
        return self.predict_batch([image], concepts)[0]


SEGMENTERS: Registry[Segmenter] = Registry("segmenter")
SEGMENTERS.add("reco", "segment.reco:ReCoSegmenter")  # built-ins are imported on first use
SEGMENTERS.add("reco-plus", "segment.reco_plus:ReCoPlusSegmenter")
SEGMENTERS.add("zegclip", "segment.zegclip.segmenter:ZegCLIPSegmenter")
SEGMENTERS.add("car", "segment.car.segmenter:CaRSegmenter")


def register_segmenter(name: str) -> Callable[[Callable[..., Segmenter]], Callable[..., Segmenter]]:
    """Class or factory decorator: make a segmenter available to `create_segmenter(name, ...)`."""
    return SEGMENTERS.register(name)


def available_segmenters() -> list[str]:
    """Names of the registered segmenters (nothing is imported to list them)."""
    return sorted(SEGMENTERS.names())


def segmenter_factory(name: str) -> Callable[..., Segmenter]:
    """The class or factory registered as `name` (e.g. to read which options it takes)."""
    return SEGMENTERS.get(name)


def create_segmenter(name: str, **kwargs) -> Segmenter:
    """A segmenter by registry name ('reco', 'reco-plus', 'zegclip', 'car' or one registered), built with `kwargs`."""
    return SEGMENTERS.create(name, **kwargs)
