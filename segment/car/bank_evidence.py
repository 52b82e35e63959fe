"""Segment-bank evidence for CaR's classifier: mask-pooled dense features against each concept's reference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segment.bank import SegmentBank
from segment.dense_encoders import CLIP_PATHS, DenseEncoder, create_dense_encoder


def bank_encoder(bank: SegmentBank, clip: Any) -> DenseEncoder:
    """The dense encoder a bank was built with, recreated from its name (e.g. 'clip-penultimate:toy')."""
    spec, _, model = bank.encoder.partition(":")
    if spec not in {"clip", *(f"clip-{p}" for p in CLIP_PATHS)}:
        raise ValueError(f"cannot recreate the bank's encoder {bank.encoder!r} (weights unknown); pass encoder=...")
    if model and model != str(clip.ref):
        raise ValueError(f"the bank was built with CLIP {model!r}, but the CLIP given is {clip.ref}")
    return create_dense_encoder(spec, clip=clip)


def pool_features(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Unit mean features (P, d) of dense features (h, w, d) under masks (P, H, W), area-resized to (h, w)."""
    h, w, _ = features.shape
    weights = F.interpolate(masks[:, None].float(), size=(h, w), mode="area")[:, 0]  # (P, h, w)
    weights = weights / weights.flatten(1).sum(1).clamp_min(1e-8)[:, None, None]
    pooled = torch.einsum("phw,hwd->pd", weights, features.float())
    return F.normalize(pooled, dim=-1)


class BankEvidence:
    """softmax over queries of temperature * cos(mask-pooled dense feature, concept reference)."""

    def __init__(
        self,
        bank: SegmentBank | str | Path,
        clip: Any,
        encoder: DenseEncoder | None = None,
        temperature: float = 100.0,
    ) -> None:
        self.bank = bank if isinstance(bank, SegmentBank) else SegmentBank.load(bank)
        self.encoder = encoder if encoder is not None else bank_encoder(self.bank, clip)
        if int(self.encoder.dim) != self.bank.dim:
            raise ValueError(
                f"encoder {self.encoder.name} gives {self.encoder.dim}-d features; bank has {self.bank.dim}"
            )
        if temperature <= 0:
            raise ValueError(f"bank temperature must be positive, got {temperature}")
        self.temperature = float(temperature)

    def check(self, concepts: Sequence[str]) -> None:
        """ValueError naming a concept the bank lacks."""
        for c in concepts:
            self.bank.index(c)

    @torch.no_grad()
    def features(self, image: np.ndarray) -> torch.Tensor:
        """Dense features (h, w, d) of one (H, W, 3) uint8 image, resized whole to the encoder's square input."""
        from segment.reco import square_resize

        return self.encoder.encode([square_resize(image, int(self.encoder.input_size))])[0].cpu()

    def scores(self, features: torch.Tensor, masks: torch.Tensor, queries: Sequence[str]) -> torch.Tensor:
        """(P, Q) probabilities over `queries` of each mask (P, H, W) of the image whose `features` are given."""
        refs = self.bank.references[[self.bank.index(q) for q in queries]]  # (Q, d)
        cos = pool_features(features, masks) @ refs.T  # (P, Q)
        return torch.softmax(self.temperature * cos, dim=-1)
