"""The demo's HTML report: titled sections of text, tables and image grids, rendered by Jinja2 into one file."""

from __future__ import annotations

import base64
import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
from PIL import Image

from pipeline.core.io import atomic_path


def data_uri(image: np.ndarray | Image.Image, scale: int = 1) -> str:
    """Embed an (H, W, 3) uint8 image as a PNG data URI, optionally enlarged by an integer factor."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


LABEL_COLOURS = {  # one colour per concept name, far (CIE Lab) from every toy background and from each other
    "grass": (150, 255, 50),
    "water": (0, 230, 230),
    "sand": (255, 230, 0),
    "brick": (255, 120, 0),
    "sky": (180, 120, 255),
    "circle": (230, 40, 210),
    "square": (0, 0, 110),
    "triangle": (220, 0, 60),
    "star": (20, 20, 20),
    "heart": (255, 0, 140),
    "cross": (0, 110, 100),
    "ring": (110, 20, 160),
    "crescent": (255, 150, 200),
}
OTHER_COLOURS = ((250, 250, 250), (128, 128, 128), (150, 255, 200), (110, 100, 0), (200, 150, 0))


def concept_colours(names: Sequence[str]) -> np.ndarray:
    """(n, 3) uint8 label colours of concepts, fixed by name: the same in any subset, order, run or report; a name
    not in LABEL_COLOURS gets one of the palette's colours by a stable hash of the name."""
    palette = [*LABEL_COLOURS.values(), *OTHER_COLOURS]
    picked = [LABEL_COLOURS.get(name) or palette[zlib.crc32(name.encode()) % len(palette)] for name in names]
    return np.array(picked, dtype=np.uint8).reshape(len(picked), 3)


PALETTE = concept_colours(list(LABEL_COLOURS))  # by class index of the toy world (stuff, then things)


def colourise(mask: np.ndarray) -> np.ndarray:
    """(H, W) class indices of the toy world -> (H, W, 3) uint8 label colours (those of `concept_colours`)."""
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
    legend: list[str] = field(default_factory=list)  # concept names whose label colours the grids use
    colour_scale: str = ""  # what the heat maps in the grids show (draws the dark-to-bright scale from 0 to 1)

    @property
    def legend_colours(self) -> list[tuple[str, str]]:
        """(name, CSS colour) for each legend entry, the colours `concept_colours` gives every picture."""
        colours = concept_colours(self.legend)  # (n, 3) uint8
        return [(name, "#" + bytes(rgb.tolist()).hex()) for name, rgb in zip(self.legend, colours, strict=True)]


def heat_scale_css() -> str:
    """The heat maps' colour scale as a CSS linear-gradient, dark (0) to bright (1)."""
    stops = ", ".join("rgb({:.0f},{:.0f},{:.0f})".format(*rgb) for rgb in HEAT_STOPS)
    return f"linear-gradient(to right, {stops})"


def write_report(path: Path, title: str, sections: list[Section]) -> Path:
    """Render the sections into one self-contained HTML file at `path`."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.core", "templates"), autoescape=jinja2.select_autoescape(["html"])
    )
    html = env.get_template("report.html").render(title=title, sections=sections, heat_scale=heat_scale_css())
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path
