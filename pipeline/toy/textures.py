"""Procedural textures of the toy world: stuff backgrounds and the per-class fills of things."""

from __future__ import annotations

import numpy as np

STUFF_BASE_RGB = {
    "grass": (62, 140, 52),
    "water": (38, 96, 178),
    "sand": (214, 184, 124),
    "brick": (158, 68, 48),
    "sky": (128, 178, 238),
}

# Each thing class is recognisable patch by patch by its own fill pattern (in image coordinates).
THING_FILLS = {
    "circle": "dots",
    "square": "checker",
    "triangle": "hstripes",
    "star": "vstripes",
    "heart": "zigzag",
    "cross": "diagonal",
    "ring": "grid",
    "crescent": "ripples",
}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), each (size, size) float32."""
    axis = np.arange(size, dtype=np.float32) + 0.5
    return np.meshgrid(axis, axis, indexing="ij")


def stuff_texture(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render a full-frame background of stuff class `name` as (size, size, 3) float32 in 0..255."""
    y, x = _grid(size)
    base = np.asarray(STUFF_BASE_RGB[name], np.float32) + rng.uniform(-12, 12, 3).astype(np.float32)
    if name == "grass":
        column = rng.uniform(-1, 1, size).astype(np.float32)
        blades = np.sin(y * rng.uniform(0.15, 0.3) + column[None, :] * 6) * 0.5 + column[None, :]
        shade = 1 + 0.22 * blades
    elif name == "water":
        phase = rng.uniform(0, 2 * np.pi)
        waves = np.sin(y * 0.9 + 2.2 * np.sin(x * 0.13 + phase))
        shade = 1 + 0.2 * waves
    elif name == "sand":
        shade = 1 + rng.normal(0, 0.09, (size, size)).astype(np.float32)
    elif name == "brick":
        brick_h, brick_w = 8, 16
        row = np.floor(y / brick_h)
        offset = (row % 2) * (brick_w / 2)
        mortar = ((y % brick_h) < 1.5) | (((x + offset) % brick_w) < 1.5)
        tone = rng.uniform(0.85, 1.1, (size // brick_h + 2, size // brick_w + 3)).astype(np.float32)
        shade = tone[row.astype(int), np.floor((x + offset) / brick_w).astype(int)]
        image = base[None, None, :] * shade[..., None]
        image[mortar] = (205, 200, 190)
        return image
    elif name == "sky":
        shade = 1 + 0.25 * (y / size)
        image = base[None, None, :] * shade[..., None]
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, size, 2)
            sy, sx = rng.uniform(4, 9), rng.uniform(9, 20)
            cloud = np.exp(-(((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2))
            image = image * (1 - cloud[..., None]) + 250 * cloud[..., None]
        return image
    else:
        raise ValueError(f"unknown stuff class {name!r}")
    return base[None, None, :] * shade[..., None]


def fill_pattern(fill: str, size: int, rng: np.random.Generator, centre: tuple[float, float]) -> np.ndarray:
    """Two-tone fill pattern (size, size) float32: 1 where the thing's colour shows, 0 where its dark tone does."""
    y, x = _grid(size)
    y = y + rng.uniform(0, 8)
    x = x + rng.uniform(0, 8)
    if fill == "dots":
        period = 6.0
        dy, dx = (y % period) - period / 2, (x % period) - period / 2
        return (dy**2 + dx**2 > 1.9**2).astype(np.float32)
    if fill == "checker":
        return ((np.floor(y / 4) + np.floor(x / 4)) % 2).astype(np.float32)
    if fill == "hstripes":
        return ((y % 5) < 2.5).astype(np.float32)
    if fill == "vstripes":
        return ((x % 5) < 2.5).astype(np.float32)
    if fill == "diagonal":
        return (((x + y) % 6) < 3).astype(np.float32)
    if fill == "grid":
        return (((y % 6) > 1.5) & ((x % 6) > 1.5)).astype(np.float32)
    if fill == "zigzag":
        return (((y + np.abs((x % 8) - 4)) % 6) < 3).astype(np.float32)
    if fill == "ripples":
        y0, x0 = _grid(size)
        return ((np.hypot(y0 - centre[0], x0 - centre[1]) % 5) < 2.5).astype(np.float32)
    raise ValueError(f"unknown fill {fill!r}")
