"""The demo's HTML report: titled sections of text, tables and image grids, rendered by Jinja2 into one file."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
from PIL import Image

from pipeline.io import atomic_path


def data_uri(image: np.ndarray | Image.Image, scale: int = 1) -> str:
    """Embed an (H, W, 3) uint8 image as a PNG data URI, optionally enlarged by an integer factor."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


PALETTE = np.array(
    [
        [62, 140, 52],
        [38, 96, 178],
        [214, 184, 124],
        [158, 68, 48],
        [128, 178, 238],
        [230, 25, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [0, 0, 0],
    ],
    dtype=np.uint8,
)


def colourise(mask: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 colours of the demo palette."""
    return PALETTE[np.minimum(mask, len(PALETTE) - 1)]


HEAT_STOPS = np.array([[8, 8, 40], [120, 30, 140], [230, 90, 40], [255, 240, 120]], np.float32)  # dark to bright


def heat_map(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 colours from dark blue through purple and orange to yellow."""
    x = np.clip(np.asarray(values, np.float32), 0, 1) * (len(HEAT_STOPS) - 1)
    low = np.minimum(x.astype(np.int64), len(HEAT_STOPS) - 2)
    frac = (x - low)[..., None]
    return (HEAT_STOPS[low] * (1 - frac) + HEAT_STOPS[low + 1] * frac).round().astype(np.uint8)


@dataclass
class Tile:
    """One picture in a grid, with a caption under it and an optional warning colour."""

    src: str
    caption: str = ""
    good: bool | None = None  # True: green frame, False: red frame, None: no frame


@dataclass
class Section:
    """A titled part of the report: a paragraph, an optional table (header + rows) and optional image grids."""

    title: str
    text: str = ""
    table: list[list[str]] = field(default_factory=list)
    grids: list[tuple[str, list[Tile]]] = field(default_factory=list)  # (grid title, tiles)


def write_report(path: Path, title: str, sections: list[Section]) -> Path:
    """Render the sections into one self-contained HTML file at `path`."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline", "templates"), autoescape=jinja2.select_autoescape(["html"])
    )
    html = env.get_template("report.html").render(title=title, sections=sections)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path
