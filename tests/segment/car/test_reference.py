"""The batched CaR and the official-structure reference loop give identical masks (float64, random-init ViT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.toy.quality import BENCH_SEED, render_many
from pipeline.toy.world import WorldSpec
from segment.car.reference import reference_run, reference_segment
from segment.car.segmenter import CaRSegmenter

CONCEPTS = ["grass", "water", "sky", "circle", "square", "star"]


@pytest.fixture(scope="module")
def random_clip():
    from pipeline.core.models import load_model

    torch.manual_seed(0)
    loaded = load_model("coarchive-toy-vit", device="cpu")  # no weights: random init
    loaded.model.double()  # float64: batched and per-query matmuls then round alike
    return loaded


@pytest.fixture(scope="module")
def scenes() -> np.ndarray:
    images, _, _ = render_many(WorldSpec(), BENCH_SEED, 3, workers=1, progress=False)
    return images


@pytest.mark.parametrize("crf", [False, True])
def test_fast_and_reference_masks_are_identical(random_clip, scenes, crf) -> None:
    seg = CaRSegmenter(
        random_clip,
        templates=("a photo of a {}.", "there is a {} in the scene."),
        cam_templates=("a {}.",),
        background_queries=("road", "sky"),
        vocabulary=None,
        crf=crf,
        confidence_threshold=1 / len(CONCEPTS) + 1e-4,  # random CLIP: keep the above-average queries
        max_iterations=4,
        prompts=("circle", "blur"),
    )
    images = [scenes[0], scenes[1][:80, :72], scenes[2]]
    iterations = []
    for image in images:
        fast, run = seg.segment(image, CONCEPTS)
        slow = reference_run(seg, image, CONCEPTS)
        assert [s.queries for s in slow.steps] == [s.queries for s in run.steps]
        for a, b in zip(slow.steps, run.steps, strict=True):
            np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-12)
            assert a.kept == b.kept
        reference = seg.assemble(image, *seg.check(CONCEPTS), slow)
        np.testing.assert_array_equal(fast.labels, reference.labels)
        torch.testing.assert_close(fast.scores, reference.scores, atol=1e-6, rtol=0)
        iterations.append(len(run.steps))
    assert max(iterations) >= 2  # the recurrence did drop queries on the way


def test_reference_segment_checks_its_input(random_clip) -> None:
    seg = CaRSegmenter(random_clip, vocabulary=["grass", "sky"], templates=("a {}.",), cam_templates=("a {}.",))
    with pytest.raises(ValueError, match="unicorn"):
        reference_segment(seg, np.zeros((16, 16, 3), np.uint8), ["grass", "unicorn"])
    with pytest.raises(ValueError, match="uint8"):
        reference_segment(seg, np.zeros((16, 16), np.uint8), ["grass"])
