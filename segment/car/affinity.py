"""CAM refinement by attention affinity: Sinkhorn-normalised attention, restricted to boxes around CAM regions."""

from __future__ import annotations

import numpy as np
import torch

from segment.car.gradcam import normalise_maps

Box = tuple[int, int, int, int]  # (top, left, bottom, right), inclusive pixel bounds


def sinkhorn_affinity(attention: torch.Tensor, rounds: int = 3) -> torch.Tensor:
    """(N, N) attention -> column- then row-normalised `rounds` times, symmetrised, squared: (N, N)."""
    t = attention if attention.is_floating_point() else attention.float()
    for _ in range(rounds):
        t = t / t.sum(0, keepdim=True)
        t = t / t.sum(1, keepdim=True)
    t = (t + t.T) / 2
    return t @ t


def region_boxes(mask: np.ndarray) -> list[Box]:
    """Bounding boxes (top, left, bottom, right; inclusive) of the 8-connected regions of a (h, w) bool mask,
    in the order of each region's first pixel in row-major scan."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"region_boxes needs a 2-d mask, got shape {mask.shape}")
    h, w = mask.shape
    seen = np.zeros_like(mask)
    boxes: list[Box] = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, top, left, bottom, right = [(y0, x0)], y0, x0, y0, x0
        while stack:
            y, x = stack.pop()
            top, left, bottom, right = min(top, y), min(left, x), max(bottom, y), max(right, x)
            for ny in range(max(y - 1, 0), min(y + 2, h)):
                for nx in range(max(x - 1, 0), min(x + 2, w)):
                    if mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        boxes.append((int(top), int(left), int(bottom), int(right)))
    return boxes


def box_mask(cam: torch.Tensor, threshold: float, style: str = "paper") -> torch.Tensor:
    """(h, w) bool: the union of the boxes around the regions where `cam` exceeds `threshold` times its maximum.

    As in the official code the comparison is on the map quantised to 8 bits: floor(255 cam) > int(threshold *
    floor(255 max)). Boxes include their last row and column; with `style` "official" a box that reaches the bottom
    or right edge loses that row or column (the official slice ends at min(end, size - 1)).
    """
    quantised = np.floor(cam.detach().cpu().float().numpy() * np.float32(255)).clip(0, 255)  # float32, as official
    peak = float(quantised.max())
    out = torch.zeros(cam.shape, dtype=torch.bool)
    if peak <= 0:
        return out
    h, w = cam.shape
    last = (h - 1, w - 1) if style == "official" else (h, w)
    for top, left, bottom, right in region_boxes(quantised > int(threshold * peak)):
        out[top : min(bottom + 1, last[0]), left : min(right + 1, last[1])] = True
    return out


def refine_cams(cams: torch.Tensor, affinity: torch.Tensor, threshold: float, style: str = "paper") -> torch.Tensor:
    """CAMs (Q, h, w) propagated by the affinity (N, N) from inside their boxes only (see box_mask), then min-max
    normalised."""
    q, h, w = cams.shape
    boxes = torch.stack([box_mask(c, threshold, style) for c in cams]).to(cams.device)  # (Q, h, w)
    masked = (cams * boxes).reshape(q, h * w)  # (Q, N)
    refined = (affinity.to(device=cams.device, dtype=cams.dtype) @ masked.T).T  # (Q, N)
    return normalise_maps(refined.reshape(q, h, w))
