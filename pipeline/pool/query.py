"""Searching an index: text or image queries, batched, with hits joined to their pool metadata."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.core.models import LoadedModel
from pipeline.core.shard_reader import decode_image, read_shard
from pipeline.pool.embed import split_id
from pipeline.pool.index import open_index, set_nprobe
from pipeline.pool.index_rerank import StoredEmbeddings, search_ids


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


def rerank_factor(index_dir: Path, rerank: int | None) -> int:
    """Candidates per result to re-score exactly: `rerank`, or the index's own default (index.json) when None."""
    if rerank is None:
        return int(json.loads((Path(index_dir) / "index.json").read_text()).get("rerank", 0))
    if rerank < 0:
        raise ValueError(f"rerank must be >= 0 (0 turns re-ranking off), got {rerank}")
    return rerank


def search(
    index_dir: Path, embeddings: Path, queries: np.ndarray, k: int, rerank: int | None = None, nprobe: int | None = None
) -> list[list[Hit]]:
    """Top-k hits for each of the (q, d) L2-normalised queries, in one batched search.

    `nprobe` overrides the index's tuned one for depth k (lists searched per query; faiss searches at most every
    list): by default a deep k searches more lists than a top-10 (pipeline.pool.index_depth).

    With re-ranking (`rerank` > 0, or the index's default when None: 4 for PQ indexes), the index returns
    rerank x k candidates, re-scored exactly from the stored fp16 embeddings; scores are then exact cosines.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    factor = rerank_factor(index_dir, rerank)
    index = open_index(Path(index_dir), depth=k)
    if nprobe is not None:
        set_nprobe(index, nprobe)
    if queries.ndim != 2 or queries.shape[1] != index.d:
        raise ValueError(
            f"queries have dimension {queries.shape[-1]}, the index {index.d}: was it built by another model?"
        )
    scores, ids = search_ids(index, queries, k, factor, StoredEmbeddings(Path(embeddings)))
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


@torch.no_grad()
def image_queries(loaded: LoadedModel, paths: list[str]) -> np.ndarray:
    """L2-normalised embeddings (q, d) float32 of query images; a clear error for a missing or broken file."""
    pixels = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"query image not found: {path}")
        image, reason = decode_image(Path(path).read_bytes())
        if image is None:
            raise ValueError(f"query image {path}: {reason}")
        pixels.append(loaded.preprocess(Image.fromarray(image)))
    features = loaded.model.encode_image(torch.stack(pixels).to(loaded.device)).float()
    return F.normalize(features, dim=-1).cpu().numpy()


def thumbnails(pool: Path, hits: list[Hit], size: int = 96) -> dict[int, np.ndarray]:
    """Images of the hits, read back from their pool shards, as (size, size, 3) uint8 thumbnails by id."""
    wanted: dict[int, set[str]] = {}
    for hit in hits:
        wanted.setdefault(split_id(hit.id)[0], set()).add(hit.key)
    by_key = {}
    for shard, keys in wanted.items():
        for sample in read_shard(str(Path(pool) / f"{shard:05d}.tar")).samples:
            if sample.key in keys:
                image, _ = decode_image(sample.data)
                if image is not None:
                    by_key[sample.key] = np.asarray(Image.fromarray(image).resize((size, size)))
    return {hit.id: by_key[hit.key] for hit in hits if hit.key in by_key}


def write_results_html(path: Path, queries: list[str], results: list[list[Hit]], pool: Path) -> Path:
    """An HTML page with one grid of thumbnails (score under each) per query."""
    from pipeline.core.report import Section, Tile, data_uri, write_report

    images = thumbnails(pool, [h for hits in results for h in hits])
    grids = [
        (query, [Tile(data_uri(images[h.id]), f"{h.rank}. {h.score:.3f}") for h in hits if h.id in images])
        for query, hits in zip(queries, results, strict=True)
    ]
    return write_report(Path(path), "coarchive query results", [Section("Results", grids=grids)])
