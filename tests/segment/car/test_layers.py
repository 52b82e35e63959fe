"""The thing/stuff passes: per-group keep rule, the layered merge's argmax, the settings that switch them on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segment.car.layers import background_channel, merge_layers
from segment.car.recurrence import keep_confident, recur
from segment.car.settings import CarSettings, preset


def test_keep_rule_holds_per_group() -> None:
    groups = [0, 0, 1, 1]
    # group 0: query 1 passes; group 1: none passes, its best (3) stays
    assert keep_confident([0, 1, 2, 3], [0.1, 0.7, 0.2, 0.3], 0.5, groups) == [1, 3]
    assert keep_confident([0, 1, 2, 3], [0.1, 0.7, 0.2, 0.3], 0.5) == [1]  # without groups: one best overall


def test_lockstep_groups_stop_when_both_are_stable() -> None:
    seen = []

    def propose(active: list[int]) -> list[int]:
        seen.append(list(active))
        return active

    def classify(active: list[int], _: list[int]) -> list[float]:
        # group 0 (0, 1) is stable at once; group 1 (2, 3, 4) drops 4, then 3
        table = {0: 0.9, 1: 0.9, 2: 0.9, 3: 0.9 if 4 in active else 0.1, 4: 0.1}
        return [table[q] for q in active]

    result = recur(5, propose, classify, 0.5, groups=[0, 0, 1, 1, 1])
    assert seen == [[0, 1, 2, 3, 4], [0, 1, 2, 3], [0, 1, 2]]
    assert result.queries == [0, 1, 2] and result.stopped == "stable"
    with pytest.raises(ValueError, match="groups"):
        recur(3, propose, classify, 0.5, groups=[0, 1])


def test_merge_paints_things_over_stuff() -> None:
    rng = np.random.default_rng(0)
    things = torch.from_numpy(rng.random((3, 8, 8))).float()
    stuff = torch.from_numpy(rng.random((2, 8, 8))).float()
    bg = background_channel(things, 1.0)
    merged = merge_layers(things, bg, stuff)
    thing_wins = things.amax(0) > bg
    expected = torch.where(thing_wins, things.argmax(0), 3 + stuff.argmax(0))
    assert torch.equal(merged.argmax(0), expected)
    assert torch.equal(background_channel(things[:0], 1.0), torch.ones(8, 8))  # no things: stuff everywhere


def test_stuff_settings() -> None:
    s = CarSettings(stuff=["grass", "sky"], stuff_prompts="gray", background=["sky"])
    assert s.stuff == ("grass", "sky") and s.stuff_prompts == ("gray",) and s.background == ("sky",)
    with pytest.raises(ValueError, match="stuff"):
        CarSettings(stuff="grass")
    with pytest.raises(ValueError, match="stuff_bg_factor"):
        CarSettings(stuff_bg_factor=0)
    assert preset("context").stuff_prompts == ("blur", "gray")  # the official Context config


def test_toy_segmenter_runs_both_passes(toy_model) -> None:
    from pipeline.toy.world import WorldSpec, render_scene
    from segment.car.segmenter import CaRSegmenter

    spec = WorldSpec()
    scene = render_scene(spec, 5, 0)
    concepts = list(spec.classes)
    seg = CaRSegmenter(toy_model, device="cpu", vocabulary=concepts, stuff=spec.stuff, max_iterations=3)
    out, result = seg.segment(scene.image, concepts)
    assert out.scores.shape == (len(concepts), *scene.image.shape[:2])
    kept = [concepts[q] for q in result.queries]
    assert any(c in spec.stuff for c in kept)  # the stuff pass always keeps one
    assert set(np.unique(out.labels)) <= {concepts.index(c) for c in kept}
