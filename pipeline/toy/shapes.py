"""Analytic silhouettes of the toy world's thing shapes, evaluated on rotated, radius-normalised coordinates."""

from __future__ import annotations

import numpy as np

SQRT3 = np.sqrt(3.0)


def _star(u: np.ndarray, v: np.ndarray, points: int = 5, inner: float = 0.45) -> np.ndarray:
    """Inside test of a regular star polygon with outer radius 1 and the given inner radius."""
    rho = np.hypot(u, v)
    sector = 2 * np.pi / points
    phi = np.abs(((np.arctan2(v, u) + sector / 2) % sector) - sector / 2)  # 0 at a spike tip
    outer_pt = np.array([1.0, 0.0])
    inner_pt = inner * np.array([np.cos(sector / 2), np.sin(sector / 2)])
    edge = inner_pt - outer_pt
    normal = np.array([edge[1], -edge[0]])
    offset = normal @ outer_pt
    denom = normal[0] * np.cos(phi) + normal[1] * np.sin(phi)
    boundary = offset / np.where(np.abs(denom) < 1e-9, 1e-9, denom)
    return rho <= np.abs(boundary)


def silhouette(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of `shape` on coordinates (u, v) in units of the shape's radius (v points up)."""
    if shape == "circle":
        return u**2 + v**2 <= 1
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "triangle":
        vv = v + 0.15
        return (vv >= -0.5) & (SQRT3 * u + vv <= 1) & (-SQRT3 * u + vv <= 1)
    if shape == "star":
        return _star(u, v)
    if shape == "heart":
        x, y = u * 1.15, v * 1.15 + 0.1
        return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0
    if shape == "cross":
        return ((np.abs(u) <= 0.33) & (np.abs(v) <= 0.95)) | ((np.abs(u) <= 0.95) & (np.abs(v) <= 0.33))
    if shape == "ring":
        rr = u**2 + v**2
        return (rr <= 1) & (rr >= 0.5**2)
    if shape == "crescent":
        return (u**2 + v**2 <= 1) & ((u - 0.45) ** 2 + v**2 > 0.8**2)
    raise ValueError(f"unknown shape {shape!r}")


def place(shape: str, size: int, centre: tuple[float, float], radius: float, angle: float) -> np.ndarray:
    """Boolean (size, size) mask of `shape` centred at (y, x), with radius in pixels and rotation in radians."""
    axis = np.arange(size, dtype=np.float32) + 0.5
    y, x = np.meshgrid(axis, axis, indexing="ij")
    dy, dx = (centre[0] - y) / radius, (x - centre[1]) / radius
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    return silhouette(shape, u, v)
