"""Feeding images to a segmenter per evaluation protocol (whole, short side resized, sliding window) and
bringing its scores and labels back to each image's original size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from segment.segmenter import Protocol, Segmentation, Segmenter

MODES = ("whole", "resize", "slide")
MAX_LONG_RATIO = 4  # a resized image's long side stays within 4x `size` (mmseg's 2048 for a 512 short side)


def check_protocol(protocol: Protocol) -> Protocol:
    """`protocol` if its mode is known and it has the sizes that mode needs; ValueError otherwise."""
    if protocol.mode not in MODES:
        raise ValueError(f"unknown protocol mode {protocol.mode!r}; known: {', '.join(MODES)}")
    if protocol.mode != "whole" and (protocol.size is None or protocol.size < 1):
        raise ValueError(f"protocol {protocol.mode!r} needs a positive size, got {protocol.size}")
    if protocol.mode == "slide" and (protocol.stride is None or protocol.stride < 1):
        raise ValueError(f"protocol 'slide' needs a positive stride, got {protocol.stride}")
    return protocol


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) with the short side `size` (long side capped at 4x size), bilinear."""
    height, width = image.shape[:2]
    scale = min(size / min(height, width), MAX_LONG_RATIO * size / max(height, width))
    new = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL order: (w, h)
    if new == (width, height):
        return image
    return np.asarray(Image.fromarray(image).resize(new, Image.BILINEAR))


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) labels -> `shape` by nearest neighbour (pixel centres)."""
    height, width = labels.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * height / shape[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * width / shape[1]).astype(np.int64), width - 1)
    return labels[rows[:, None], cols[None, :]]


def resize_scores(scores: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) scores -> (C, H, W) bilinearly."""
    if tuple(scores.shape[1:]) == tuple(shape):
        return scores
    return F.interpolate(scores[None], size=shape, mode="bilinear", align_corners=False)[0]


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Offsets of windows of `window` every `stride` along `length`, the last one flush with the end."""
    if length <= window:
        return [0]
    return [*range(0, length - window, stride), length - window]


def _checked(seg: Segmentation, shape: tuple[int, int], concepts: int, name: str) -> Segmentation:
    """The segmentation with CPU float32 scores, after checking its shapes against the image it came from."""
    scores = seg.scores.detach().to("cpu", torch.float32)
    labels = np.asarray(seg.labels)
    if tuple(scores.shape) != (concepts, *shape) or labels.shape != shape:
        raise ValueError(
            f"segmenter {name!r} returned scores {tuple(scores.shape)} and labels {labels.shape} "
            f"for an image of {shape} and {concepts} concepts"
        )
    return Segmentation(list(seg.concepts), scores, labels.astype(np.int64))


def _predict(
    segmenter: Segmenter, images: Sequence[np.ndarray], concepts: list[str], batch_size: int
) -> list[Segmentation]:
    """Predict `images` in chunks of `batch_size`, checked against each image's size."""
    out: list[Segmentation] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        segs = segmenter.predict_batch(chunk, concepts)
        if len(segs) != len(chunk):
            raise ValueError(f"segmenter {segmenter.name!r} returned {len(segs)} results for {len(chunk)} images")
        out += [_checked(s, im.shape[:2], len(concepts), segmenter.name) for s, im in zip(segs, chunk, strict=True)]
    return out


def _slide(segmenter: Segmenter, image: np.ndarray, concepts: list[str], protocol: Protocol, batch_size: int):
    """(C, h, w) scores of `image` averaged over overlapping windows."""
    size, stride = int(protocol.size), int(protocol.stride)
    height, width = image.shape[:2]
    boxes = [
        (top, left, min(size, height), min(size, width))
        for top in window_starts(height, size, stride)
        for left in window_starts(width, size, stride)
    ]
    crops = [image[t : t + h, s : s + w] for t, s, h, w in boxes]
    total = torch.zeros(len(concepts), height, width)
    count = torch.zeros(height, width)
    for (top, left, h, w), seg in zip(boxes, _predict(segmenter, crops, concepts, batch_size), strict=True):
        total[:, top : top + h, left : left + w] += seg.scores
        count[top : top + h, left : left + w] += 1
    return total / count


def predict_with_protocol(
    segmenter: Segmenter,
    images: Sequence[np.ndarray],
    concepts: Sequence[str],
    protocol: Protocol,
    batch_size: int = 8,
) -> list[Segmentation]:
    """Segment each (H, W, 3) image as `protocol` says; every result comes back at its image's original size."""
    check_protocol(protocol)
    concepts = list(concepts)
    if protocol.mode == "whole":
        return _predict(segmenter, list(images), concepts, batch_size)
    if protocol.mode == "resize":
        small = [resize_short_side(image, int(protocol.size)) for image in images]
        out = []
        for image, seg in zip(images, _predict(segmenter, small, concepts, batch_size), strict=True):
            shape = image.shape[:2]
            out.append(Segmentation(concepts, resize_scores(seg.scores, shape), resize_labels(seg.labels, shape)))
        return out
    out = []
    for image in images:  # slide: scores averaged over windows, resized back, then the argmax
        scores = _slide(segmenter, resize_short_side(image, int(protocol.size)), concepts, protocol, batch_size)
        scores = resize_scores(scores, image.shape[:2])
        out.append(Segmentation(concepts, scores, scores.argmax(0).numpy()))
    return out
