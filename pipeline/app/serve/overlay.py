"""A segmentation drawn for people: label colours fixed per concept name, an overlay on the image, and a legend."""

from __future__ import annotations

import numpy as np

from pipeline.core.report import concept_colours

ALPHA = 0.5  # weight of the label colour in the overlay


def mask_image(labels: np.ndarray, concepts: list[str]) -> np.ndarray:
    """(H, W) label indices into `concepts` -> (H, W, 3) uint8 label colours."""
    return concept_colours(concepts)[labels]


def overlay_image(image: np.ndarray, labels: np.ndarray, concepts: list[str], alpha: float = ALPHA) -> np.ndarray:
    """The (H, W, 3) uint8 image blended with its label colours."""
    mixed = (1 - alpha) * image.astype(np.float32) + alpha * mask_image(labels, concepts).astype(np.float32)
    return mixed.round().clip(0, 255).astype(np.uint8)


def legend(concepts: list[str], labels: np.ndarray) -> list[dict]:
    """Per concept: its label index, colour (hex and RGB) and the fraction of pixels given it."""
    counts = np.bincount(labels.ravel(), minlength=len(concepts))
    colours = concept_colours(concepts)
    return [
        {
            "index": i,
            "concept": concept,
            "colour": "#{:02x}{:02x}{:02x}".format(*(int(v) for v in colours[i])),
            "rgb": [int(v) for v in colours[i]],
            "fraction": round(float(counts[i]) / labels.size, 6),
        }
        for i, concept in enumerate(concepts)
    ]
