"""Searching an index: text or image queries, batched, with hits joined to their pool metadata."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.embed import split_id
from pipeline.index import open_index


@dataclass
class Hit:
    """One search result with the metadata of its pool sample."""

    rank: int
    id: int
    score: float
    key: str
    url: str
    caption: str


@functools.lru_cache(maxsize=64)
def _shard_rows(embeddings: Path, shard: int) -> dict[int, dict]:
    table = pq.read_table(embeddings / f"{shard:05d}.parquet", columns=["id", "key", "url", "caption"])
    return {row["id"]: row for row in table.to_pylist()}


def search(index_dir: Path, embeddings: Path, queries: np.ndarray, k: int) -> list[list[Hit]]:
    """Top-k hits for each of the (q, d) L2-normalised queries, in one batched search."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    index = open_index(Path(index_dir))
    if queries.ndim != 2 or queries.shape[1] != index.d:
        raise ValueError(
            f"queries have dimension {queries.shape[-1]}, the index {index.d}: was it built by another model?"
        )
    scores, ids = index.search(np.ascontiguousarray(queries, np.float32), k)
    results = []
    for row_scores, row_ids in zip(scores, ids, strict=True):
        hits = []
        for score, ident in zip(row_scores, row_ids, strict=True):
            if ident < 0:
                continue
            meta = _shard_rows(Path(embeddings), split_id(int(ident))[0])[int(ident)]
            hits.append(Hit(len(hits) + 1, int(ident), float(score), meta["key"], meta["url"], meta["caption"]))
        results.append(hits)
    return results
