"""Label pixels by a segment bank alone: each pixel's nearest reference (ReCo's full inference is segment/reco.py)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from segment.bank import SegmentBank
from segment.dense_encoders import DenseEncoder


@torch.no_grad()
def bank_logits(features: torch.Tensor, bank: SegmentBank, size: tuple[int, int]) -> torch.Tensor:
    """cos(patch feature, reference) per concept, bilinearly upsampled: (N, C, H, W) from features (N, h, w, d)."""
    logits = torch.einsum("nhwd,cd->nchw", features.float(), bank.references)
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


@torch.no_grad()
def label_with_bank(
    encoder: DenseEncoder,
    bank: SegmentBank,
    images: np.ndarray,
    batch_size: int = 64,
) -> np.ndarray:
    """(N, H, W) uint8 argmax labels of (N, H, W, 3) uint8 images: each pixel's nearest reference."""
    size = tuple(images.shape[1:3])
    out = []
    for start in range(0, len(images), batch_size):
        scores = bank_logits(encoder.encode(images[start : start + batch_size]), bank, size)  # (B, C, H, W)
        out.append(scores.argmax(1).to(torch.uint8).numpy())
    return np.concatenate(out)
