"""Fetching until k distinct items are kept: refetch of the short concepts only, the cap, an exhausted index."""

from __future__ import annotations

import numpy as np
import pytest

from archives.fetch import MAX_FETCH, OVERFETCH, fetch_distinct
from pipeline.pool.query import Hit

D = 8


class FakeIndex:
    """Exact inner-product search over unit rows (n, D), recording the queries and depth of every search."""

    def __init__(self, vectors: np.ndarray, reach: int | None = None) -> None:
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.reach = reach  # at most this many hits per query, as an IVF index with a small nprobe returns
        self.calls: list[tuple[int, int]] = []  # (queries, candidates asked)

    def search(self, queries: np.ndarray, want: int) -> list[list[Hit]]:
        self.calls.append((len(queries), want))
        scores = queries @ self.vectors.T  # (q, n)
        out = []
        for row in scores:
            order = np.argsort(-row, kind="stable")[: min(want, self.reach or want)]
            out.append([Hit(r + 1, int(i), float(row[i]), f"k{i}", "", "") for r, i in enumerate(order)])
        return out

    def get(self, ids: list[int]) -> np.ndarray:
        return self.vectors[ids].reshape(len(ids), D)


def _world(rng: np.random.Generator, copies: int, distinct: int, axis: int, near: float) -> np.ndarray:
    """`copies` exact copies of 4 images right on `axis`, then `distinct` different images a little further off."""
    base = np.zeros(D)
    base[axis] = 1.0
    originals = base + 0.15 * np.eye(D)[[(axis + j) % D for j in range(2, 6)]]  # cosine 0.978 to each other
    others = base + near * rng.standard_normal((distinct, D))
    return np.concatenate([np.repeat(originals, copies // 4, axis=0), others])


def _query(axis: int) -> np.ndarray:
    q = np.zeros((1, D), np.float32)
    q[0, axis] = 1.0
    return q


def test_short_concept_is_searched_again_until_k_distinct() -> None:
    rng = np.random.default_rng(0)
    index = FakeIndex(np.concatenate([_world(rng, 200, 100, 0, 0.3), _world(rng, 0, 100, 1, 0.3)]))
    k = 10
    found = fetch_distinct(index.search, index.get, np.concatenate([_query(0), _query(1)]), k, 0.99, 400)
    assert [len(f.hits) for f in found] == [k, k]
    assert [f.short_reason for f in found] == ["", ""]
    # the first search covers both concepts; only the one whose copies filled its first candidates is searched again
    assert index.calls[0] == (2, OVERFETCH * k) and all(q == 1 for q, _ in index.calls[1:]) and len(index.calls) > 1
    assert found[0].searches == len(index.calls) and found[1].searches == 1
    assert found[0].candidates > 200 and found[0].duplicates_removed >= 196  # 200 copies of 4 images
    kept = index.get([h.id for h in found[0].hits])
    cos = kept @ kept.T
    np.fill_diagonal(cos, -1)
    assert cos.max() < 0.99 and [h.rank for h in found[0].hits] == list(range(1, k + 1))


def test_stops_at_the_cap_and_says_so() -> None:
    rng = np.random.default_rng(1)
    k = 5
    index = FakeIndex(_world(rng, 4 * MAX_FETCH * k, 50, 0, 0.3))
    (found,) = fetch_distinct(index.search, index.get, _query(0), k, 0.99, len(index.vectors))
    # the first MAX_FETCH k candidates are all copies of one image (copies of each image are adjacent)
    assert len(found.hits) == 1 and found.candidates == MAX_FETCH * k
    assert found.short_reason.startswith(f"1 of {k} items: stopped at the cap of {MAX_FETCH * k} candidates")
    assert f"{MAX_FETCH * k - 1} of them were near-duplicates (cosine >= 0.99)" in found.short_reason


def test_exhausted_index_and_limited_reach() -> None:
    rng = np.random.default_rng(2)
    index = FakeIndex(_world(rng, 40, 6, 0, 0.3))
    (found,) = fetch_distinct(index.search, index.get, _query(0), 20, 0.99, 46)
    assert len(found.hits) == 10 and found.candidates == 46
    assert found.short_reason == (
        "10 of 20 items: the index holds only 46 images and all were searched; "
        "36 of them were near-duplicates (cosine >= 0.99) of kept items"
    )
    shallow = FakeIndex(_world(rng, 40, 200, 0, 0.3), reach=30)
    (found,) = fetch_distinct(shallow.search, shallow.get, _query(0), 20, 0.99, 240)
    assert len(found.hits) < 20 and "the index returned only 30 candidates (of 240 images" in found.short_reason


@pytest.mark.parametrize(("k", "count"), [(0, 10), (5, 0)])
def test_bad_arguments(k: int, count: int) -> None:
    index = FakeIndex(np.eye(D))
    with pytest.raises(ValueError, match="must be positive" if k == 0 else "holds no images"):
        fetch_distinct(index.search, index.get, _query(0), k, 0.99, count)


def test_shallow_index_is_widened_before_a_concept_is_called_short() -> None:
    rng = np.random.default_rng(3)
    index = FakeIndex(_world(rng, 40, 200, 0, 0.3), reach=30)
    widenings = []

    def widen() -> bool:  # each widening lets the index reach twice as far, up to all 240 images
        if index.reach >= 240:
            return False
        index.reach = min(240, 2 * index.reach)
        widenings.append(index.reach)
        return True

    (found,) = fetch_distinct(index.search, index.get, _query(0), 20, 0.99, 240, widen)
    assert len(found.hits) == 20 and found.short_reason == ""
    assert widenings == [60]  # 60 candidates already hold 20 distinct images
    (deep,) = fetch_distinct(index.search, index.get, _query(0), 300, 0.99, 240, widen)
    assert deep.candidates == 240 and "of 300 items: the index holds only 240 images and all" in deep.short_reason
    assert widenings == [60, 120, 240]
