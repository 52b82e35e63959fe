"""CaR's visual prompts: mark a mask on the image (red ellipse, box, contour) and/or fade what lies outside it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DRAWN = ("circle", "rectangle", "contour")  # outlines drawn in `colour`
OUTSIDE = ("blur", "gray", "black")  # changes to the pixels outside the mask
PROMPTS = OUTSIDE + DRAWN
RED = (255, 0, 0)
BLUR_SIGMA = 2.6  # OpenCV's sigma for the official 15 x 15 kernel


def check_prompts(prompts: Sequence[str] | str) -> tuple[str, ...]:
    """Prompt names as a tuple ('circle+blur' or a sequence); ValueError naming unknown ones."""
    names = tuple(p for p in (prompts.split("+") if isinstance(prompts, str) else prompts) if p)
    unknown = [p for p in names if p not in PROMPTS]
    if unknown:
        raise ValueError(f"unknown visual prompts {unknown}; choose from {', '.join(PROMPTS)}")
    return names


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), inclusive, of the True pixels of a (H, W) mask; ValueError if it has none."""
    rows, cols = np.nonzero(mask)
    if not len(rows):
        raise ValueError("empty mask has no box")
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def inner_outline(region: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of `region` with at least one 4-neighbour outside it (the image border counts as outside)."""
    padded = np.pad(region, 1, constant_values=False)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return region & ~inside


def ellipse_outline(shape: tuple[int, int], mask: np.ndarray) -> np.ndarray:
    """(H, W) bool outline of the ellipse inscribed in the mask's box (centre and half-extents of the box)."""
    top, left, bottom, right = mask_box(mask)
    cy, cx = (top + bottom) / 2, (left + right) / 2
    ay, ax = max((bottom - top + 1) / 2, 0.5), max((right - left + 1) / 2, 0.5)
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    filled = ((ys - cy) / ay) ** 2 + ((xs - cx) / ax) ** 2 <= 1.0
    return inner_outline(filled)


def rectangle_outline(shape: tuple[int, int], mask: np.ndarray) -> np.ndarray:
    """(H, W) bool outline of the mask's box."""
    top, left, bottom, right = mask_box(mask)
    filled = np.zeros(shape, bool)
    filled[top : bottom + 1, left : right + 1] = True
    return inner_outline(filled)


def blur_kernel_side(sigma: float) -> int:
    """The odd kernel side whose OpenCV default sigma, 0.3 ((side - 1) / 2 - 1) + 0.8, is nearest `sigma` (2.6: 15)."""
    return 2 * max(1, round((sigma - 0.8) / 0.3 + 1)) + 1


def gaussian_blur(image: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """(H, W, 3) uint8 blurred by OpenCV's GaussianBlur (reflect-101 borders) on a blur_kernel_side(sigma) square
    kernel; for the default sigma exactly the official call, GaussianBlur(image, (15, 15), 0)."""
    import cv2

    if sigma <= 0:
        raise ValueError(f"blur sigma must be positive, got {sigma}")
    side = blur_kernel_side(sigma)
    own = 0.3 * ((side - 1) * 0.5 - 1) + 0.8  # the sigma OpenCV derives from the side when given 0
    return cv2.GaussianBlur(
        np.ascontiguousarray(image, np.uint8), (side, side), 0 if abs(own - sigma) < 1e-9 else sigma
    )


def grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 luma (0.299 R + 0.587 G + 0.114 B, rounded) in all three channels."""
    luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.rint(luma).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)


def apply_visual_prompts(
    image: np.ndarray,
    mask: np.ndarray,
    prompts: Sequence[str] | str = ("circle", "blur"),
    colour: tuple[int, int, int] = RED,
    blur_sigma: float = BLUR_SIGMA,
) -> np.ndarray:
    """A prompted copy of an (H, W, 3) uint8 image for a (H, W) bool mask: first blur / gray / black outside the
    mask (in that order), then outlines drawn in `colour`. Masks of at most one pixel leave the image unchanged."""
    prompts = check_prompts(prompts)
    mask = np.asarray(mask, bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask of shape {mask.shape} for an image of shape {image.shape}")
    out = np.array(image, dtype=np.uint8, copy=True)
    if mask.sum() <= 1:
        return out
    outside = ~mask
    if "blur" in prompts:
        out[outside] = gaussian_blur(out, blur_sigma)[outside]
    if "gray" in prompts:
        out[outside] = grayscale(out)[outside]
    if "black" in prompts:
        out[outside] = 0
    shape = mask.shape
    lines = {
        "circle": lambda: ellipse_outline(shape, mask),
        "rectangle": lambda: rectangle_outline(shape, mask),
        "contour": lambda: inner_outline(mask),
    }
    for name in DRAWN:
        if name in prompts:
            out[lines[name]()] = colour
    return out
