"""The toy world: deterministic scenes of textured stuff and filled thing shapes, with captions and masks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.toy.shapes import place
from pipeline.toy.textures import STUFF_BASE_RGB, THING_FILLS, fill_pattern, stuff_texture

STUFF = tuple(STUFF_BASE_RGB)
THINGS = tuple(THING_FILLS)
COLOURS = {
    "red": (222, 38, 38),
    "orange": (244, 140, 28),
    "yellow": (240, 222, 40),
    "green": (40, 196, 70),
    "blue": (40, 84, 230),
    "purple": (146, 58, 206),
    "pink": (248, 128, 196),
    "white": (244, 244, 244),
}


@dataclass(frozen=True)
class WorldSpec:
    """Parameters of a toy world: image size, class lists, which things are rare, and how rare."""

    image_size: int = 96
    stuff: tuple[str, ...] = STUFF
    things: tuple[str, ...] = THINGS
    rare: tuple[str, ...] = ("heart", "crescent")
    rare_rate: float = 0.005
    colours: tuple[str, ...] = tuple(COLOURS)
    horizon_rate: float = 0.3
    context_rate: float = 0.0  # chance that a scene's common things come from the natives of its background

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}")
        for name in self.stuff:
            if name not in STUFF_BASE_RGB:
                raise ValueError(f"unknown stuff class {name!r}; known: {', '.join(STUFF)}")
        for name in self.things:
            if name not in THING_FILLS:
                raise ValueError(f"unknown thing class {name!r}; known: {', '.join(THINGS)}")
        for name in self.rare:
            if name not in self.things:
                raise ValueError(f"rare class {name!r} is not one of the things")
        if len(self.common) < 3:
            raise ValueError("the world needs at least 3 thing classes that are not rare")
        if not 0 <= self.rare_rate <= 1:
            raise ValueError(f"rare_rate must be in [0, 1], got {self.rare_rate}")
        if not 0 <= self.context_rate <= 1:
            raise ValueError(f"context_rate must be in [0, 1], got {self.context_rate}")
        for name in self.colours:
            if name not in COLOURS:
                raise ValueError(f"unknown colour {name!r}; known: {', '.join(COLOURS)}")

    @property
    def classes(self) -> tuple[str, ...]:
        """All class names in mask-index order: stuff first, then things."""
        return self.stuff + self.things

    @property
    def common(self) -> tuple[str, ...]:
        """Thing classes that are not rare."""
        return tuple(t for t in self.things if t not in self.rare)

    def habitat(self, thing: str) -> str:
        """The background a thing favours in a world with context (as boats favour water): stuff in turn."""
        return self.stuff[self.things.index(thing) % len(self.stuff)]


@dataclass
class Scene:
    """One rendered scene: image (H, W, 3) uint8, class-index mask (H, W) uint8, caption and contents."""

    image: np.ndarray
    mask: np.ndarray
    caption: str
    stuff: list[str]
    things: list[tuple[str, str]] = field(default_factory=list)  # (shape, colour) in drawing order


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of scene `index` of a world seeded with `seed` (independent of every other scene)."""
    return np.random.default_rng([seed, index])


def _pick_things(spec: WorldSpec, rng: np.random.Generator, ground: str) -> list[str]:
    count = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    chosen = [name for name in spec.rare if rng.random() < spec.rare_rate][:count]
    pool = spec.common
    if spec.context_rate > 0 and rng.random() < spec.context_rate:  # no draw without context: old worlds unchanged
        pool = tuple(t for t in spec.common if spec.habitat(t) == ground) or pool
    rest = rng.permutation(len(pool))[: count - len(chosen)]
    chosen += [pool[i] for i in rest]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def _background(spec: WorldSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    size = spec.image_size
    first = int(rng.integers(len(spec.stuff)))
    image = stuff_texture(spec.stuff[first], size, rng)
    mask = np.full((size, size), first, np.uint8)
    names = [spec.stuff[first]]
    if len(spec.stuff) > 1 and rng.random() < spec.horizon_rate:
        second = int((first + rng.integers(1, len(spec.stuff))) % len(spec.stuff))
        x = np.arange(size, dtype=np.float32) + 0.5
        line = size * rng.uniform(0.3, 0.7) + 3 * np.sin(x * rng.uniform(0.05, 0.15) + rng.uniform(0, 6))
        below = (np.arange(size, dtype=np.float32)[:, None] + 0.5) > line[None, :]
        image[below] = stuff_texture(spec.stuff[second], size, rng)[below]
        mask[below] = second
        names.append(spec.stuff[second])
    return image, mask, names


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def make_caption(
    things: list[tuple[str, str]],
    stuff: list[str],
    rng: np.random.Generator,
    colour_rate: float = 0.5,
    stuff_rate: float = 0.4,
) -> str:
    """A caption naming the things (with colour words at `colour_rate`) and the background (at `stuff_rate`)."""
    with_colour = rng.random() < colour_rate
    phrases = []
    for shape, colour in things:
        words = f"{colour} {shape}" if with_colour else shape
        phrases.append(f"{_article(words)} {words}")
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    if rng.random() < stuff_rate:
        ground = " and ".join(stuff)
        template = ["a photo of {t} on {s}", "{t} on a {s} background", "there is {t} in front of {s}"]
    else:
        ground = ""
        template = ["a photo of {t}", "{t}", "a picture of {t}"]
    return template[int(rng.integers(len(template)))].format(t=listed, s=ground) + "."


def render_scene(spec: WorldSpec, seed: int, index: int) -> Scene:
    """Render scene `index` of the world (spec, seed): same arguments, same pixels, mask and caption."""
    rng = scene_rng(seed, index)
    size = spec.image_size
    scale = size / 96
    image, mask, stuff = _background(spec, rng)
    shapes = _pick_things(spec, rng, stuff[0])
    colours = [spec.colours[int(rng.integers(len(spec.colours)))] for _ in shapes]
    for _attempt in range(20):
        layout = [
            (
                rng.uniform(0.18 * size, 0.82 * size, 2),
                rng.uniform(11, 22) * scale,
                rng.uniform(0, 2 * np.pi),
            )
            for _ in shapes
        ]
        silhouettes = [place(s, size, tuple(c), r, a) for s, (c, r, a) in zip(shapes, layout, strict=True)]
        visible = [m.copy() for m in silhouettes]
        for i, m in enumerate(silhouettes):
            for j in range(i):
                visible[j] &= ~m
        if all(v.sum() >= 0.5 * max(m.sum(), 1) for v, m in zip(visible, silhouettes, strict=True)):
            break
    things = []
    axis = np.arange(size, dtype=np.float32)
    for shape, colour, inside, (centre, radius, _) in zip(shapes, colours, silhouettes, layout, strict=True):
        rgb = np.asarray(COLOURS[colour], np.float32) + rng.uniform(-14, 14, 3).astype(np.float32)
        pattern = fill_pattern(THING_FILLS[shape], size, rng, (float(centre[0]), float(centre[1])))
        direction = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(direction) * (axis[None, :] - centre[1]) + np.sin(direction) * (axis[:, None] - centre[0])
        shade = 1 + 0.12 * np.clip(ramp / radius, -1, 1)
        tone = (0.38 + 0.62 * pattern) * shade
        image[inside] = np.clip(rgb[None, :] * tone[inside][:, None], 0, 255)
        mask[inside] = len(spec.stuff) + spec.things.index(shape)
        things.append((shape, colour))
    image = image + rng.normal(0, 3, image.shape).astype(np.float32)
    caption = make_caption(things, stuff, rng)
    return Scene(np.clip(image, 0, 255).round().astype(np.uint8), mask, caption, stuff, things)
