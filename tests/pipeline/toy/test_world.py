"""The toy world renders deterministic, consistent scenes and validates its parameters."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.toy.world import WorldSpec, render_scene


def test_same_seed_same_scene_and_other_seed_differs() -> None:
    spec = WorldSpec()
    a, b, c = render_scene(spec, 1, 5), render_scene(spec, 1, 5), render_scene(spec, 2, 5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.caption == b.caption
    assert not np.array_equal(a.image, c.image)


def test_mask_holds_exactly_the_scene_contents() -> None:
    spec = WorldSpec()
    for index in range(40):
        scene = render_scene(spec, 0, index)
        present = {spec.classes[i] for i in np.unique(scene.mask)}
        things = {shape for shape, _ in scene.things}
        assert 1 <= len(scene.things) <= 3
        assert things <= present, f"scene {index}: a named thing is not visible"
        assert present - things <= set(scene.stuff)
        assert all(thing in scene.caption for thing in things)


def test_rare_things_are_rare_and_common_ones_are_not() -> None:
    spec = WorldSpec(rare_rate=0.01)
    counts = {t: 0 for t in spec.things}
    for index in range(1500):
        for shape in {s for s, _ in render_scene(spec, 0, index).things}:
            counts[shape] += 1
    for rare in spec.rare:
        assert 3 <= counts[rare] <= 35, counts
    for common in spec.common:
        assert counts[common] > 300, counts


def test_context_makes_things_favour_their_habitat() -> None:
    """With context, a thing's archive is dominated by one background (ReCo's context elimination needs that)."""
    for rate, low, high in ((0.0, 0.1, 0.35), (0.9, 0.55, 0.9)):
        spec = WorldSpec(context_rate=rate)
        at_home = {t: [] for t in spec.common}
        for index in range(600):
            scene = render_scene(spec, 0, index)
            for shape in {s for s, _ in scene.things if s in at_home}:
                at_home[shape].append(scene.stuff[0] == spec.habitat(shape))
        share = np.mean([np.mean(v) for v in at_home.values()])
        assert low <= share <= high, (rate, share)


def test_image_size_is_a_parameter() -> None:
    scene = render_scene(WorldSpec(image_size=64), 0, 0)
    assert scene.image.shape == (64, 64, 3) and scene.image.dtype == np.uint8 and scene.mask.shape == (64, 64)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image_size": 8},
        {"things": ("circle", "blob")},
        {"rare": ("lake",)},
        {"rare_rate": 2.0},
        {"context_rate": -0.1},
        {"stuff": ("lava",)},
        {"things": ("circle", "heart"), "rare": ("heart",)},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WorldSpec(**kwargs)
