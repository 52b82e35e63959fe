"""The one pixel path: uint8 images to a CLIP's normalised input tensor, and L2-normalised image embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from pipeline.core.models import LoadedModel


def normalise_pixels(loaded: LoadedModel, images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 square images -> normalised (N, 3, S, S) float pixels at the model's input size S."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    cfg = getattr(loaded.model.visual, "preprocess_cfg", {}) or {}
    mean = torch.tensor(cfg.get("mean", OPENAI_DATASET_MEAN)).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", OPENAI_DATASET_STD)).view(1, 3, 1, 1)
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    if pixels.shape[-1] != loaded.image_size:  # e.g. 96-px toy scenes into a 224-px ViT-B/16
        size = (loaded.image_size, loaded.image_size)
        pixels = F.interpolate(pixels, size=size, mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
    return ((pixels - mean) / std).to(loaded.device)


@torch.no_grad()
def image_embeddings(loaded: LoadedModel, images: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """L2-normalised image embeddings (N, d) float32 of (N, H, W, 3) uint8 images at the model's input size."""
    out = []
    for start in range(0, len(images), batch_size):
        pixels = normalise_pixels(loaded, images[start : start + batch_size])
        out.append(F.normalize(loaded.model.encode_image(pixels).float(), dim=-1).cpu())
    return torch.cat(out)
