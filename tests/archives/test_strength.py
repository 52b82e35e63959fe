"""The weak rule judges an archive on the items it holds: short archives of clear hits are strong, absent ones weak."""

from __future__ import annotations

import numpy as np

from archives.strength import STANDOUT_MARGIN, measure_strength, null_kth

POOL = 3000


def test_short_archive_of_clear_hits_is_not_weak() -> None:
    scores = np.full(12, 0.5)  # z = 4 with mu 0.1, sigma 0.1: far above any concept-free pool's best 12
    power = measure_strength(scores, 0.1, 0.1, POOL)
    assert not power.weak and power.reason == "" and power.standouts == 12
    assert power.standout_z == null_kth(12, POOL) + STANDOUT_MARGIN


def test_archive_of_chance_scores_is_weak_and_says_why() -> None:
    z = np.array([3.3, 2.9] + [1.5] * 18)  # what an absent concept's top 20 look like on the toy world
    power = measure_strength(0.1 + 0.1 * z, 0.1, 0.1, POOL)
    assert power.weak and power.standouts == 1
    assert power.reason.startswith(f"its 20 items average z {power.strength:.2f}; a pool without the concept would")
    assert "only 1 of its 20 items score clearly above" in power.reason and power.reason.endswith("scores it low")


def test_half_standing_out_is_enough_and_empty_is_weak() -> None:
    z = np.array([8.0] * 5 + [0.0] * 5)  # mean 4, far above a concept-free pool's top 10
    assert not measure_strength(0.1 + 0.1 * z, 0.1, 0.1, POOL).weak
    fewer = measure_strength(0.1 + 0.1 * z[1:], 0.1, 0.1, POOL)  # 4 of 9 stand out
    assert fewer.weak and fewer.reason.startswith("only 4 of its 9 items")
    empty = measure_strength(np.zeros(0), 0.1, 0.1, POOL)
    assert empty.weak and empty.reason == "the archive holds no items" and empty.strength == 0.0
