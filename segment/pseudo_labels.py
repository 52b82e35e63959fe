"""Pseudo-labels for ReCo+: a segmenter's label maps of unlabelled target images, batched."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from segment.segmenter import Segmenter, check_concepts


def segmenter_concepts(segmenter: Segmenter) -> list[str]:
    """The concepts a bank-backed segmenter (ReCo) knows, in bank order; ValueError for one without a bank."""
    bank = getattr(segmenter, "bank", None)
    if bank is None:
        raise ValueError(f"{type(segmenter).__name__} has no bank; pass the concepts to pseudo-label with")
    return list(bank.concepts)


def pseudo_label(
    segmenter: Segmenter,
    images: Sequence[np.ndarray] | np.ndarray,
    concepts: Sequence[str] | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> np.ndarray:
    """(N, H, W) uint8 label maps (indices into `concepts`, default the bank's) of same-sized (H, W, 3) uint8 images."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if len(images) == 0:
        raise ValueError("no images to pseudo-label")
    concepts = check_concepts(concepts) if concepts is not None else segmenter_concepts(segmenter)
    if len(concepts) > 255:
        raise ValueError(f"uint8 labels hold at most 255 concepts (255 is 'ignore'), got {len(concepts)}")
    shapes = {tuple(np.shape(im)) for im in images}
    if len(shapes) != 1:
        raise ValueError(f"pseudo-labelled images must share one size, got {sorted(shapes)}")
    out = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="pseudo-label", disable=not progress):
        results = segmenter.predict_batch(list(images[start : start + batch_size]), concepts)
        out.append(np.stack([r.labels for r in results]).astype(np.uint8))  # (B, H, W)
    return np.concatenate(out)
