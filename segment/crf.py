"""Dense CRF refinement of per-concept probability maps (fully connected CRF, via pydensecrf2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class CrfSettings:
    """Mean-field iterations and kernel parameters; the defaults are the ones ReCo and CaR use."""

    iterations: int = 10
    gaussian_sxy: float = 1.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 67.0
    bilateral_srgb: float = 3.0
    bilateral_compat: float = 4.0


def dense_crf(
    image: np.ndarray, probs: np.ndarray | torch.Tensor, settings: CrfSettings | None = None, **overrides: float
) -> np.ndarray:
    """Refine class probabilities (C, H, W) of an (H, W, 3) uint8 image (read-only is fine); refined (C, H, W).

    The unary is -log(probs); a Gaussian (position) and a bilateral (position and colour) kernel smooth it.
    Settings come from `settings`, then keyword overrides (e.g. `iterations=5`).
    """
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    settings = settings or CrfSettings()
    unknown = set(overrides) - set(CrfSettings.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown CRF settings {sorted(unknown)}; known: {sorted(CrfSettings.__dataclass_fields__)}")
    s = CrfSettings(**{**settings.__dict__, **overrides})
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"dense_crf needs an (H, W, 3) uint8 image, got {getattr(image, 'shape', type(image))}")
    p = probs.detach().float().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs, np.float32)
    if p.ndim != 3 or p.shape[1:] != image.shape[:2]:
        raise ValueError(f"probs must be (C, {image.shape[0]}, {image.shape[1]}), got {p.shape}")
    c, h, w = p.shape
    if c < 2:  # nothing to decide between
        return np.ones_like(p, dtype=np.float32)
    p = np.clip(p, 1e-8, None)
    p = p / p.sum(0, keepdims=True)
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(p.astype(np.float32))))
    crf.addPairwiseGaussian(sxy=s.gaussian_sxy, compat=s.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=s.bilateral_sxy,
        srgb=s.bilateral_srgb,
        rgbim=np.require(image, requirements=["C", "W"]),
        compat=s.bilateral_compat,
    )
    q = np.asarray(crf.inference(s.iterations), dtype=np.float32)  # (C, H * W)
    return q.reshape(c, h, w)
