"""Optional SAM refinement for CaR: a concept's mask is replaced by the SAM mask that overlaps it with IoU > 0.9."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

MaskSource = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 image -> (M, H, W) bool masks


def _segment_anything() -> Any:
    """The segment_anything package, or ImportError saying how to get it."""
    try:
        import segment_anything
    except ImportError as error:
        raise ImportError(
            "SAM refinement needs the segment-anything package: pip install segment-anything "
            "(and SAM weights from its model card)"
        ) from error
    return segment_anything


def load_sam(checkpoint: str | Path, model_type: str = "vit_b", device: str | torch.device = "cpu") -> Any:
    """A SAM model from a local checkpoint file (segment_anything's sam_model_registry)."""
    sa = _segment_anything()
    if model_type not in sa.sam_model_registry:
        raise ValueError(f"unknown SAM model type {model_type!r}; choose from {', '.join(sa.sam_model_registry)}")
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"SAM checkpoint not found: {checkpoint}")
    return sa.sam_model_registry[model_type](checkpoint=str(checkpoint)).to(device).eval()


def automatic_masks(sam: Any, **generator_options: Any) -> MaskSource:
    """A mask source running segment_anything's automatic mask generator on a SAM model."""
    sa = _segment_anything()
    generator = sa.SamAutomaticMaskGenerator(sam, **generator_options)

    def generate(image: np.ndarray) -> np.ndarray:
        found = generator.generate(image)
        if not found:
            return np.zeros((0, *image.shape[:2]), bool)
        return np.stack([m["segmentation"] for m in found]).astype(bool)

    return generate


def as_mask_source(sam: Any) -> MaskSource:
    """A mask source from a checkpoint path, a SAM model, an automatic generator, or a function of the image."""
    if isinstance(sam, (str, Path)):
        return automatic_masks(load_sam(sam))
    if hasattr(sam, "generate"):
        return lambda image: np.stack([m["segmentation"] for m in sam.generate(image)] or [np.zeros(image.shape[:2])])
    if isinstance(sam, torch.nn.Module):
        return automatic_masks(sam)
    if callable(sam):
        return sam
    raise ValueError(
        f"cannot use {type(sam).__name__} for SAM refinement; give a checkpoint, a Sam model or a function"
    )


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of a (H, W) bool mask with each of (M, H, W) bool masks: (M,)."""
    inter = (b & a[None]).reshape(len(b), -1).sum(1)
    union = (b | a[None]).reshape(len(b), -1).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def sam_refine(sam: Any, image: np.ndarray, scores: torch.Tensor, iou: float = 0.9) -> torch.Tensor:
    """Scores (C, H, W) where, for each concept whose argmax mask has a SAM mask of IoU > `iou`, that SAM mask's
    pixels are raised just above the pixel's best score (so the argmax follows SAM there)."""
    masks = np.asarray(as_mask_source(sam)(image), bool)  # (M, H, W)
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"SAM masks must be (M, {image.shape[0]}, {image.shape[1]}), got {masks.shape}")
    if not len(masks):
        return scores
    labels = scores.argmax(0).numpy()
    out = scores.clone()
    for c in range(scores.shape[0]):
        region = labels == c
        if not region.any():
            continue
        overlaps = mask_iou(region, masks)
        best = int(overlaps.argmax())
        if overlaps[best] > iou:
            pixels = torch.from_numpy(masks[best])
            out[c][pixels] = out[:, pixels].amax(0) + 1e-4
    return out
