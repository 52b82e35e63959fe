"""Fetching until an archive keeps k distinct items: search, drop near-duplicates, search further for the short ones.

The first search asks for OVERFETCH k candidates for every concept at once. A concept left with fewer than k items
after near-duplicate removal is searched again, with GROWTH times as many candidates (the short concepts batched
together), until it keeps k items, the index returns fewer candidates than asked (every image it can reach has been
looked at), or MAX_FETCH k candidates have been searched. When the index returns fewer than asked and the search can
still widen (an IVF index probing fewer lists than it has), the concept is searched again, wider, before it is
called short. A short archive says which of these stopped it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from archives.dedup import greedy_dedup
from pipeline.pool.query import Hit

OVERFETCH = 4  # candidates per wanted item in the first search
GROWTH = 4  # each further search asks for this many times more candidates
MAX_FETCH = 64  # the cap: at most this many candidates per wanted item are searched

Search = Callable[[np.ndarray, int], list[list[Hit]]]  # (q, d) queries, candidates per query -> hits per query
Vectors = Callable[[list[int]], np.ndarray]  # ids -> (n, d) float32 unit rows of the stored image embeddings
Widen = Callable[[], bool]  # make later searches reach more of the index; False when they already reach all of it


@dataclass
class Fetched:
    """One concept's kept items and how they were found."""

    hits: list[Hit]  # kept items, ranked 1..n
    candidates: int  # candidates the last search returned (all of them looked at when short)
    searches: int  # searches this concept took part in
    duplicates_removed: int  # candidates dropped as near-duplicates of kept items
    short_reason: str  # why fewer than k items were kept, in plain words ('' when k were kept)


def fetch_distinct(
    search: Search,
    vectors: Vectors,
    queries: np.ndarray,
    k: int,
    threshold: float,
    count: int,
    widen: Widen | None = None,
) -> list[Fetched]:
    """Per query (q, d), the first k candidates whose cosine to every kept one is below `threshold`.

    `count` is how many images the index holds. The first search covers every query; later ones only the short.
    `widen` is called when a search returned fewer candidates than asked; if it widened, those are searched again.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if count <= 0:
        raise ValueError(f"the index holds no images (count {count})")
    cap = max(min(count, MAX_FETCH * k), 1)
    want = min(cap, OVERFETCH * k)
    results: list[Fetched | None] = [None] * len(queries)
    searches = 0
    pending = list(range(len(queries)))
    while pending:
        searches += 1
        hits = search(queries[pending], want)
        still_short, ran_out = [], []  # ran_out: short because the index returned fewer than asked
        for c, candidates in zip(pending, hits, strict=True):
            positions, dropped = greedy_dedup(vectors([h.id for h in candidates]), threshold, k)
            kept = [
                Hit(r + 1, h.id, h.score, h.key, h.url, h.caption)
                for r, h in enumerate(candidates[i] for i in positions)
            ]
            reason = ""
            if len(kept) < k:
                reason = _short_reason(len(kept), k, len(candidates), want, dropped, threshold, count, cap)
                if not reason:
                    still_short.append(c)
                    continue
                if len(candidates) < want and len(candidates) < count:
                    ran_out.append((c, Fetched(kept, len(candidates), searches, dropped, reason)))
                    continue
            results[c] = Fetched(kept, len(candidates), searches, dropped, reason)
        widened = bool(ran_out) and widen is not None and widen()
        for c, fetched in ran_out:
            if widened:
                still_short.append(c)  # searched again, wider, at the same depth
            else:
                results[c] = fetched
        pending = sorted(still_short)
        if not widened:
            want = min(cap, want * GROWTH)
    return [r for r in results if r is not None]


def _short_reason(
    kept: int, k: int, returned: int, asked: int, dropped: int, threshold: float, count: int, cap: int
) -> str:
    """Why a search that kept `kept` < k items ends here, or '' when a larger search may still fill it."""
    duplicates = f"; {dropped} of them were near-duplicates (cosine >= {threshold}) of kept items" if dropped else ""
    if returned < asked or asked >= count:
        if returned == count:
            where = f"the index holds only {count} images and all were searched"
        else:
            where = f"the index returned only {returned} candidates (of {count} images; its nprobe reaches no more)"
        return f"{kept} of {k} items: {where}{duplicates}"
    if asked >= cap:
        return (
            f"{kept} of {k} items: stopped at the cap of {cap} candidates ({MAX_FETCH} per wanted item){duplicates}; "
            "a higher --dedup-threshold keeps more"
        )
    return ""
