"""Near-duplicate thresholds per model, and greedy removal in rank order."""

from __future__ import annotations

import numpy as np
import pytest

from archives.dedup import CLIP_THRESHOLD, TOY_THRESHOLD, default_threshold, greedy_dedup
from pipeline.core.models import ModelRef


def test_default_threshold_per_model() -> None:
    assert default_threshold(ModelRef.parse("toy")) == TOY_THRESHOLD == 0.999
    assert default_threshold(ModelRef.parse("ViT-B-16:openai")) == CLIP_THRESHOLD == 0.95


def test_greedy_dedup_keeps_rank_order_and_counts_drops() -> None:
    a, b = np.eye(3)[0], np.eye(3)[1]
    close = (a + 0.01 * b) / np.linalg.norm(a + 0.01 * b)  # cosine 0.99995 to a
    vectors = np.stack([a, close, b, a])
    assert greedy_dedup(vectors, 0.999, 2) == ([0, 2], 1)  # stops once 2 are kept
    assert greedy_dedup(vectors, 0.999, 10) == ([0, 2], 2)
    assert greedy_dedup(vectors, 1.0, 10) == ([0, 1, 2], 1)  # only exact copies at 1.0
    with pytest.raises(ValueError, match="dedup threshold must be in"):
        greedy_dedup(vectors, 0.0, 1)
