"""The index: a budget-driven choice, recall floors against exact search, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.executors import LocalExecutor
from pipeline.core.models import ModelRef
from pipeline.core.stage import run_stage
from pipeline.pool.embed import EMBED_SCHEMA, EmbedStage, sample_id
from pipeline.pool.index import build_index, exact_search, plan_index
from pipeline.pool.query import search
from pipeline.toy.quality import text_embeddings


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _synthetic_embeddings(folder: Path, shards: int, per_shard: int, dim: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors in the embed stage's layout; returns the cluster centres."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(64, dim)))
    folder.mkdir(parents=True)
    for shard in range(shards):
        labels = rng.integers(0, len(centres), per_shard)
        vectors = _unit(centres[labels] + 0.35 * rng.normal(size=(per_shard, dim)) / np.sqrt(dim) * 4)
        np.save(folder / f"{shard:05d}.npy", vectors.astype(np.float16))
        rows = [
            {
                "id": sample_id(shard, r),
                "key": f"{shard:05d}{r:04d}",
                "url": "",
                "caption": "",
                "width": 1,
                "height": 1,
                "status": "ok",
            }
            for r in range(per_shard)
        ]
        pq.write_table(pa.Table.from_pylist(rows, schema=EMBED_SCHEMA), folder / f"{shard:05d}.parquet")
    return centres


def test_plan_follows_count_and_budget() -> None:
    assert plan_index(100_000, 512, 2 * 1024**3).factory == "IVF512,Flat"
    assert plan_index(1_000_000, 512, 4 * 1024**3).factory == "IVF2048,Flat"
    small = plan_index(1_000_000, 512, 256 * 1024**2)
    assert small.factory.endswith("x8") and small.memory_bytes <= 256 * 1024**2
    with pytest.raises(ValueError):
        plan_index(1_000_000, 512, 1024**2)
    with pytest.raises(ValueError):
        plan_index(0, 512, 1024**3)
    with pytest.raises(ValueError, match="120 vectors of dim 512 fit in 4096 bytes only as PQ codes, and PQ codes"):
        plan_index(120, 512, 4096)  # faiss cannot train 256 centroids per sub-vector on 120 vectors


def test_recall_floor_on_clustered_synthetic_data(tmp_path: Path) -> None:
    folder = tmp_path / "emb"
    centres = _synthetic_embeddings(folder, shards=4, per_shard=5000, dim=64)
    queries = _unit(centres[:40] + 0.2 * np.random.default_rng(1).normal(size=(40, 64)) / 8)
    info = build_index(folder, tmp_path / "index", queries, LocalExecutor(), progress=False)
    assert info["count"] == 20_000 and info["factory"].startswith("IVF")
    assert info["recall"]["recall@10"] >= 0.95 and info["recall"]["recall@100"] >= 0.9
    hits = search(tmp_path / "index", folder, queries[:3], 10)
    _, exact = exact_search(folder, queries[:3], 10)
    assert np.mean([len({h.id for h in hs} & set(e)) / 10 for hs, e in zip(hits, exact, strict=True)]) >= 0.9


def test_toy_pool_index_and_text_search(toy_world: Path, toy_model, tmp_path: Path) -> None:
    run_stage(EmbedStage(str(toy_world / "pool"), str(tmp_path), ModelRef("toy")), LocalExecutor(), progress=False)
    folder = tmp_path / "embeddings" / "toy"
    queries = text_embeddings(toy_model, ["circle", "square", "star", "grass", "water", "red"]).numpy()
    info = build_index(folder, tmp_path / "index", queries, LocalExecutor(), progress=False)
    assert info["recall"]["recall@10"] >= 0.95
    hits = search(tmp_path / "index", folder, queries[:1], 5)[0]
    assert len(hits) == 5 and hits[0].score >= hits[-1].score and all(h.caption for h in hits)
    with pytest.raises(ValueError, match="dimension"):
        search(tmp_path / "index", folder, np.zeros((1, 7), np.float32), 5)
    with pytest.raises(ValueError, match="k must be positive"):
        search(tmp_path / "index", folder, queries[:1], 0)


def test_missing_embeddings_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_index(tmp_path / "none", tmp_path / "index", np.zeros((1, 4), np.float32), LocalExecutor())


def _all_ids(index_dir: Path) -> set[int]:
    import faiss

    from pipeline.pool.index import open_index

    index = open_index(index_dir)  # keep a reference: the IVF view below borrows its memory
    invlists = faiss.extract_index_ivf(index).invlists
    ids: set[int] = set()
    for lst in range(invlists.nlist):
        size = invlists.list_size(lst)
        if size:
            pointer = invlists.get_ids(lst)
            ids.update(faiss.rev_swig_ptr(pointer, size).tolist())
            invlists.release_ids(lst, pointer)
    return ids


def test_incremental_add_matches_a_full_rebuild(tmp_path: Path) -> None:
    full = tmp_path / "full"
    centres = _synthetic_embeddings(full, shards=3, per_shard=4000, dim=32, seed=3)
    queries = _unit(centres[:30] + 0.02 * np.random.default_rng(2).normal(size=(30, 32)))
    growing = tmp_path / "growing"
    growing.mkdir()
    for name in ("00000.npy", "00000.parquet", "00001.npy", "00001.parquet"):
        (growing / name).write_bytes((full / name).read_bytes())
    build_index(growing, tmp_path / "inc", queries, LocalExecutor(), progress=False)
    trained_before = (tmp_path / "inc" / "trained.index").read_bytes()
    for name in ("00002.npy", "00002.parquet"):
        (growing / name).write_bytes((full / name).read_bytes())
    inc = build_index(growing, tmp_path / "inc", queries, LocalExecutor(), incremental=True, progress=False)
    rebuilt = build_index(full, tmp_path / "rebuilt", queries, LocalExecutor(), progress=False)
    assert inc["retrained_because"] is None and (tmp_path / "inc" / "trained.index").read_bytes() == trained_before
    assert inc["count"] == rebuilt["count"] == 12_000 and inc["shards"] == [0, 1, 2]
    assert _all_ids(tmp_path / "inc") == _all_ids(tmp_path / "rebuilt")
    # 30 queries x 10 hits: recall moves in steps of 1/300, so 0.01 is exactly 3 hits (1e-9 absorbs float rounding)
    assert abs(inc["recall"]["recall@10"] - rebuilt["recall"]["recall@10"]) <= 0.01 + 1e-9


def test_incremental_retrains_when_the_lists_drift(tmp_path: Path) -> None:
    folder = tmp_path / "emb"
    centres = _synthetic_embeddings(folder, shards=2, per_shard=3000, dim=32, seed=4)
    queries = _unit(centres[:10])
    build_index(folder, tmp_path / "index", queries, LocalExecutor(), progress=False)
    info = build_index(
        folder, tmp_path / "index", queries, LocalExecutor(), incremental=True, max_imbalance=1.0, progress=False
    )
    assert info["retrained_because"].startswith("inverted-list imbalance")


def test_block_by_block_merge_equals_faiss_merge_ondisk(tmp_path: Path) -> None:
    import faiss
    from faiss.contrib.ondisk import merge_ondisk

    from pipeline.pool.index import TRAINED, merge_blocks_ondisk

    folder = tmp_path / "emb"
    centres = _synthetic_embeddings(folder, shards=3, per_shard=2000, dim=16, seed=5)
    build_index(folder, tmp_path / "index", _unit(centres[:5]), LocalExecutor(), progress=False)
    blocks = sorted((tmp_path / "index" / "blocks").glob("*.index"))
    ours = faiss.read_index(str(tmp_path / "index" / TRAINED))
    merge_blocks_ondisk(ours, blocks, tmp_path / "ours.ivfdata")
    reference = faiss.read_index(str(tmp_path / "index" / TRAINED))
    merge_ondisk(reference, [str(b) for b in blocks], str(tmp_path / "reference.ivfdata"))
    assert ours.ntotal == reference.ntotal == 6000
    for index in (ours, reference):
        faiss.extract_index_ivf(index).nprobe = 8
    queries = _unit(centres[:20])
    assert np.array_equal(ours.search(queries, 20)[1], reference.search(queries, 20)[1])
