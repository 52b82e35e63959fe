"""Exact re-ranking: PQ candidates re-scored from the stored fp16 embeddings, memory-mapped shard by shard.

A PQ index ranks by approximate scores, so a deep top-k loses true neighbours exactly where PQ is needed (big
pools). Asking the index for `rerank` x k candidates and re-scoring them against the stored vectors returns the
exact top-k of those candidates, with exact scores; the pages of the shards touched are all that is read.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

CANDIDATE_FLOATS = 1 << 26  # gathered candidate vectors held at once: 256 MiB of float32


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column positions (q, k) of each row's k highest scores, highest first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (q, k), unordered
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


class StoredEmbeddings:
    """The pool's stored embeddings, embeddings/{model_id}/{shard}.npy, memory-mapped and looked up by sample id."""

    def __init__(self, embeddings: Path) -> None:
        self.embeddings = Path(embeddings)
        self._shards: dict[int, np.ndarray] = {}

    def shard(self, shard: int) -> np.ndarray:
        """The memory-mapped (n, d) float16 array of one shard."""
        if shard not in self._shards:
            path = self.embeddings / f"{shard:05d}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"embedding shard not found: {path}")
            self._shards[shard] = np.load(path, mmap_mode="r")
        return self._shards[shard]

    def vectors(self, ids: np.ndarray, dim: int) -> np.ndarray:
        """Vectors (n, dim) float32 of sample ids (n,) int64 (`shard << 32 | row`); rows of id -1 are zero."""
        ids = np.asarray(ids, np.int64)
        out = np.zeros((len(ids), dim), np.float32)
        valid = ids >= 0
        shards, rows = ids >> 32, ids & 0xFFFFFFFF
        for shard in np.unique(shards[valid]):
            where = valid & (shards == shard)
            wanted, inverse = np.unique(rows[where], return_inverse=True)  # read each page once, in file order
            out[where] = self.shard(int(shard))[wanted][inverse]
        return out


def rerank(stored: StoredEmbeddings, queries: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact scores and ids (q, k) of the best k of each query's candidate ids (q, c); -1 pads short rows."""
    q, c = ids.shape
    scores_out = np.full((q, min(k, c)), -np.inf, np.float32)
    ids_out = np.full((q, min(k, c)), -1, np.int64)
    step = max(1, CANDIDATE_FLOATS // max(1, c * queries.shape[1]))
    for start in range(0, q, step):
        block = ids[start : start + step]  # (b, c)
        vectors = stored.vectors(block.ravel(), queries.shape[1]).reshape(*block.shape, -1)  # (b, c, d)
        scores = np.matmul(vectors, queries[start : start + step, :, None])[..., 0]  # (b, c)
        scores[block < 0] = -np.inf
        best = top_k(scores, k)  # (b, k)
        scores_out[start : start + step] = np.take_along_axis(scores, best, 1)
        ids_out[start : start + step] = np.where(
            np.isfinite(scores_out[start : start + step]), np.take_along_axis(block, best, 1), -1
        )
    return scores_out, ids_out


RERANK_DEPTH = 100  # the tuner measures re-ranked recall on top-100 searches; fewer candidates would not keep it


def search_ids(
    index: faiss.Index, queries: np.ndarray, k: int, rerank_factor: int = 0, stored: StoredEmbeddings | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids (q, k): the index's own, or with `rerank_factor` > 0 its factor x max(k, RERANK_DEPTH)
    candidates re-scored (a shallow k re-scores as many as the depth the factor was tuned at)."""
    query = np.ascontiguousarray(queries, np.float32)  # (q, d)
    if rerank_factor <= 0:
        return index.search(query, k)
    if stored is None:
        raise ValueError("re-ranking needs the stored embeddings")
    _, candidates = index.search(query, max(k, RERANK_DEPTH) * rerank_factor)  # (q, factor max(k, depth))
    return rerank(stored, query, candidates, k)
