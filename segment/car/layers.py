"""CaR's thing and stuff layers merged into one score map: things are painted over stuff, as the official code does."""

from __future__ import annotations

import numpy as np
import torch

from segment.crf import CrfSettings, dense_crf


def background_channel(maps: torch.Tensor, factor: float) -> torch.Tensor:
    """(1 - max over maps)^factor (H, W) of proposals (K, H, W); ones when there are none."""
    if not len(maps):
        return torch.ones(maps.shape[1:])
    return (1 - maps.float().amax(0)).clamp_min(0) ** factor


def crf_layer(image: np.ndarray, channels: torch.Tensor, settings: CrfSettings) -> torch.Tensor:
    """One layer's channels (K, H, W) after the dense CRF (normalised per pixel first); a single channel unchanged."""
    if len(channels) < 2:
        return channels
    probs = channels.float().clamp_min(1e-8)
    return torch.from_numpy(dense_crf(image, probs / probs.sum(0, keepdim=True), settings)).float()


def merge_layers(things: torch.Tensor, thing_background: torch.Tensor, stuff: torch.Tensor) -> torch.Tensor:
    """Scores (T + S, H, W): thing channels (T, H, W) as they are, then stuff channels (S, H, W) scaled to the thing
    layer's background (H, W) by each pixel's best stuff channel.

    Their argmax is the official layering: a thing where a thing beats the thing layer's background, else the best
    stuff channel (the stuff layer may carry its own background channel among its S).
    """
    peak = stuff.float().amax(0, keepdim=True).clamp_min(1e-8)  # (1, H, W)
    return torch.cat([things.float(), thing_background.float()[None] * stuff.float() / peak])
