"""Floors under the bundled toy CLIP's measured quality: broken weights, loading or preprocessing fail them."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.toy.quality import measure_toy_quality, precision_at_k, r_precision
from pipeline.toy.world import WorldSpec

# Measured on a 3,000-image pool (rare things in 2% of images, so that 50 of them exist) and 100 benchmark scenes,
# held-out worlds 0 / 1 / 2 (`python -m pipeline.toy.targets --protocol ci --measure clip`): precision@50 common 1.00
# in each, rare 0.79 / 0.82 / 0.86; MaskCLIP value-path mIoU 0.672 / 0.730 / 0.721, common things 0.615 / 0.626 /
# 0.613; token-path mIoU 0.235 / 0.240 / 0.244. The README's table uses the full protocol (`coarchive toy eval`:
# 10,000 images, rare at 0.5%). Floors sit under the worst world.
FLOORS = {"common_p50": 0.98, "rare_p50": 0.75, "miou_value": 0.64, "common_things": 0.58, "miou_tokens": 0.21}


@pytest.fixture(scope="module")
def quality(toy_model):
    spec = WorldSpec(rare_rate=0.02)
    return spec, measure_toy_quality(toy_model, spec, pool_size=3000, bench_size=100, progress=False)


def test_retrieval_precision_floors(quality) -> None:
    spec, q = quality
    assert q.mean_precision(list(spec.common)) >= FLOORS["common_p50"]
    assert q.mean_precision(list(spec.rare)) >= FLOORS["rare_p50"]
    assert min(q.precision[t] for t in spec.common) >= 0.9


def test_dense_miou_floors(quality) -> None:
    spec, q = quality
    assert q.miou >= FLOORS["miou_value"]
    assert np.mean([q.iou[t] for t in spec.common]) >= FLOORS["common_things"]  # the value path finds the things
    assert q.miou_tokens >= FLOORS["miou_tokens"]


def test_precision_helpers_on_a_hand_example() -> None:
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.1, 0.8], [0.5, 0.2]])
    relevant = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], dtype=bool)
    assert precision_at_k(scores, relevant, 2).tolist() == [0.5, 1.0]
    assert r_precision(scores, relevant).tolist() == [0.5, 1.0]
    with pytest.raises(ValueError):
        precision_at_k(scores, relevant, 0)


def test_a_real_architecture_at_its_own_input_size_goes_through_the_same_measurement() -> None:
    from pipeline.core.models import load_model

    loaded = load_model("ViT-B-32", device="cpu")  # random init, 224 px: toy scenes are resized to it
    q = measure_toy_quality(loaded, WorldSpec(), pool_size=64, bench_size=4, k=5, progress=False)
    assert set(q.precision) == set(WorldSpec().things) and 0 <= q.miou <= 1
