"""nprobe by depth: the build tunes a deep nprobe, and a deep search uses it (recall@1000 floors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.executors import LocalExecutor
from pipeline.pool.embed import EMBED_SCHEMA, sample_id
from pipeline.pool.index import build_index, exact_search, recall_at_k
from pipeline.pool.index_depth import deep_counts, deep_depth, describe_deep, nprobe_for_depth
from pipeline.pool.query import search
from tests.pipeline.pool.test_index import _unit


def test_nprobe_grows_with_depth_between_the_two_tuned_points() -> None:
    info = {"nprobe": 4, "nlist": 512, "deep": {"depth": 1000, "nprobe": 64, "recall": 0.96}}
    assert [nprobe_for_depth(info, k) for k in (1, 10, 100)] == [4, 4, 4]
    assert nprobe_for_depth(info, 1000) == 64
    assert nprobe_for_depth(info, 316) == 16  # halfway in log depth: the geometric mean of 4 and 64
    assert nprobe_for_depth(info, 2000) == 128  # beyond the tuned depth: in proportion to k
    assert nprobe_for_depth(info, 100_000) == 512  # never past every list
    assert nprobe_for_depth({"nprobe": 4, "nlist": 512}, 1000) == 4  # an index built before depth tuning
    assert nprobe_for_depth({**info, "deep": None}, 1000) == 4  # a pool too small to tune deeper than 100


def test_deep_depth_follows_the_pool() -> None:
    assert deep_depth(1_000_000) == 1000 and deep_depth(2000) == 500 and deep_depth(400) is None


def test_the_deep_tuning_reads_as_counts_and_a_clause() -> None:
    info = {"nprobe": 4, "deep": {"depth": 500, "nprobe": 64, "recall": 0.9612}}
    assert deep_counts(info) == {"deep_nprobe": 64, "recall@500": 0.9612}
    assert describe_deep(info) == ", recall@500 0.961 at nprobe 64"
    assert deep_counts({"nprobe": 4, "deep": None}) == {} and describe_deep({"nprobe": 4}) == ""


def _spread_world(folder: Path, seed: int, n: int = 40_000, dim: int = 32, centres: int = 400) -> np.ndarray:
    """Many small clusters, so a top-1000 spans several inverted lists; returns 160 queries near the centres."""
    rng = np.random.default_rng(seed)
    middles = _unit(rng.normal(size=(centres, dim)))
    folder.mkdir(parents=True)
    for shard in range(2):
        count = n // 2
        vectors = _unit(middles[rng.integers(0, centres, count)] + 0.35 * rng.normal(size=(count, dim)) / np.sqrt(dim))
        np.save(folder / f"{shard:05d}.npy", vectors.astype(np.float16))
        rows = [
            {"id": sample_id(shard, r), "key": f"{shard}-{r}", "url": "", "caption": "", "width": 1, "height": 1}
            | {"status": "ok"}
            for r in range(count)
        ]
        pq.write_table(pa.Table.from_pylist(rows, schema=EMBED_SCHEMA), folder / f"{shard:05d}.parquet")
    return _unit(middles[rng.integers(0, centres, 160)] + 0.6 * rng.normal(size=(160, dim)) / np.sqrt(dim))


@pytest.mark.parametrize("seed", [11, 12])
def test_a_top_1000_keeps_its_recall_with_the_deep_nprobe(seed: int, tmp_path: Path) -> None:
    queries = _spread_world(tmp_path / "emb", seed)
    info = build_index(tmp_path / "emb", tmp_path / "index", queries[:80], LocalExecutor(), progress=False)
    assert json.loads((tmp_path / "index" / "index.json").read_text())["deep"] == info["deep"]
    assert info["deep"]["depth"] == 1000 and info["deep"]["nprobe"] > info["nprobe"], info["deep"]
    held = queries[80:]
    _, exact = exact_search(tmp_path / "emb", held, 1000)
    recalls = {}
    for name, nprobe in (("by depth", None), ("top-10 nprobe", info["nprobe"])):
        hits = search(tmp_path / "index", tmp_path / "emb", held, 1000, nprobe=nprobe)
        recalls[name] = recall_at_k([[h.id for h in row] for row in hits], exact, 1000)
    # measured on seeds 0-3: 0.980-0.985 by depth (nprobe 64 of 512), 0.157-0.171 with the top-10 nprobe (2)
    assert recalls["by depth"] >= 0.95 and recalls["top-10 nprobe"] <= 0.5, recalls
