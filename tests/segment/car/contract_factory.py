"""The car segmenter as the shared contract test builds it: toy or random weights, built in seconds."""

from __future__ import annotations

from pipeline.toy.world import WorldSpec
from segment.segmenter import Segmenter, create_segmenter


def build(toy_model) -> tuple[Segmenter, list[str]]:
    """(segmenter, concepts) for the contract test: CaR on the toy CLIP (proposals and classifier), no bank; the
    caller gives the words the toy CLIP knows, as the application does."""
    classes = list(WorldSpec().classes)
    segmenter = create_segmenter("car", clip=toy_model, device="cpu", max_iterations=3, vocabulary=classes)
    return segmenter, classes
