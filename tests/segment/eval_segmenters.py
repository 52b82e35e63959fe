"""Test-only segmenters for the evaluation harness, registered as 'test-oracle', 'test-constant', 'test-pointwise'.

Images of the evaluation tests encode their truth: the red channel of a pixel of class k is 30 + 60 k, so the
oracle can read the labels back from the pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from segment.segmenter import Protocol, Segmentation, Segmenter, register_segmenter

STEP, OFFSET = 60, 30


def encode(mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W) class indices (255 = ignore) -> (H, W, 3) uint8 image whose red channel encodes the class."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*mask.shape, 3), dtype=np.uint8)
    image[..., 0] = np.where(mask == 255, rng.integers(0, 256, mask.shape), OFFSET + STEP * mask.astype(np.int64))
    return image


def one_hot(labels: np.ndarray, num: int) -> torch.Tensor:
    """(H, W) labels -> (C, H, W) float32 one-hot scores."""
    return torch.nn.functional.one_hot(torch.from_numpy(labels), num).permute(2, 0, 1).float()


class OracleSegmenter(Segmenter):
    """Reads each pixel's class back from its red channel."""

    name = "test-oracle"

    def __init__(self, crf: bool = False) -> None:
        self.crf = crf
        self.batches: list[int] = []

    def predict_batch(self, images: Sequence[np.ndarray], concepts: Sequence[str]) -> list[Segmentation]:
        self.batches.append(len(images))
        out = []
        for image in images:
            labels = np.rint((image[..., 0].astype(np.float64) - OFFSET) / STEP).astype(np.int64)
            labels = np.clip(labels, 0, len(concepts) - 1)
            out.append(Segmentation(list(concepts), one_hot(labels, len(concepts)), labels))
        return out


class ConstantSegmenter(Segmenter):
    """Predicts one class everywhere."""

    name = "test-constant"

    def __init__(self, index: int = 1) -> None:
        self.index = index

    def predict_batch(self, images: Sequence[np.ndarray], concepts: Sequence[str]) -> list[Segmentation]:
        out = []
        for image in images:
            labels = np.full(image.shape[:2], self.index, np.int64)
            out.append(Segmentation(list(concepts), one_hot(labels, len(concepts)), labels))
        return out


class PointwiseSegmenter(Segmenter):
    """Scores each pixel from its own colour only, so it commutes with translation and cropping."""

    name = "test-pointwise"
    protocol = Protocol("slide", 40, 25)

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def predict_batch(self, images: Sequence[np.ndarray], concepts: Sequence[str]) -> list[Segmentation]:
        out = []
        for image in images:
            self.sizes.append(image.shape[:2])
            pixels = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)  # (3, H, W)
            centres = torch.linspace(0, 255, len(concepts))[:, None, None]  # (C, 1, 1)
            scores = -((pixels[0] - centres) ** 2) / 1000 + 0.01 * pixels[1] / (1 + centres)  # (C, H, W)
            out.append(Segmentation(list(concepts), scores, scores.argmax(0).numpy()))
        return out


register_segmenter("test-oracle")(OracleSegmenter)
register_segmenter("test-constant")(ConstantSegmenter)
register_segmenter("test-pointwise")(PointwiseSegmenter)
