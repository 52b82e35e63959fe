"""Batch retrieval: every registry concept searched at once, deduplicated (searching further for short archives),
scored for strength, written as archives."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from archives.archive import IMAGES, ITEMS, ITEMS_SCHEMA, QUERY, image_member, images_tar_bytes
from archives.dedup import StoredVectors, default_threshold
from archives.fetch import GROWTH, MAX_FETCH, OVERFETCH, fetch_distinct
from archives.prompts import concept_embeddings, templates
from archives.registry import Concept
from archives.strength import background_stats, measure_strength, pool_sample
from pipeline.core.io import atomic_path
from pipeline.core.models import LoadedModel
from pipeline.core.shard_reader import read_shard
from pipeline.pool.embed import split_id
from pipeline.pool.index_depth import nprobe_for_depth
from pipeline.pool.query import Hit, rerank_factor, search

SUMMARY = "archives.json"


@dataclass
class ArchiveResult:
    """What one concept's archive holds, as printed and summarised in archives.json."""

    concept: str
    slug: str
    items: int
    duplicates_removed: int
    strength: float
    standouts: int
    weak: bool
    reason: str
    short_reason: str = ""  # why the archive holds fewer than k items ('' when it holds k)


def run_dir(root: Path | str, model_id: str, run: str) -> Path:
    """archives/{model_id}/{run}/ under the data root."""
    return Path(root) / "archives" / model_id / run


def build_archives(
    root: Path | str,
    loaded: LoadedModel,
    concepts: list[Concept],
    run: str,
    template_set: str,
    version: str = "v1",
    k: int = 50,
    dedup_threshold: float | None = None,
    pool: Path | str | None = None,
    images: bool = True,
    progress: bool = False,
    rerank: int | None = None,
) -> list[ArchiveResult]:
    """Write one archive per concept under archives/{model_id}/{run}/ and the run's archives.json (last).

    `dedup_threshold` defaults to the model's (archives.dedup.default_threshold). With a PQ index, each search
    re-scores at least `rerank` x k candidates exactly from the stored embeddings (None: the index's default).
    """
    root = Path(root)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if not concepts:
        raise ValueError("no concepts to archive; add some with 'coarchive concepts add NAME'")
    model_id = loaded.ref.model_id
    index_dir = root / "index" / model_id / version
    embeddings = root / "embeddings" / model_id
    if not (index_dir / "index.json").is_file():
        raise FileNotFoundError(f"no index at {index_dir}; run 'coarchive index' first")
    info = json.loads((index_dir / "index.json").read_text())
    if loaded.embed_dim != info["dim"]:
        raise ValueError(
            f"model {loaded.ref} embeds in dimension {loaded.embed_dim}, the index at {index_dir} has {info['dim']}"
        )
    pool = Path(pool) if pool is not None else root / "pool"
    if images and not pool.is_dir():
        raise FileNotFoundError(f"pool folder not found: {pool} (give --pool, or --no-images)")
    templates(template_set)  # fail early on an unknown set

    if dedup_threshold is None:
        dedup_threshold = default_threshold(loaded.ref)
    queries = concept_embeddings(loaded, concepts, template_set)  # (C, d) float32
    count = int(info["count"])
    stored = StoredVectors(embeddings)

    factor = rerank_factor(index_dir, rerank)
    probe = {"nprobe": nprobe_for_depth(info, k), "lists": int(info.get("nlist", info["nprobe"]))}

    def batched_search(rows: np.ndarray, want: int) -> list[list[Hit]]:
        # one batched search for all the concepts given; `want` (>= 4k) candidates are already more than k, so
        # re-ranking asks the index for max(want, factor x k) and re-scores them all
        per_hit = math.ceil(factor * k / want) if factor else 0
        return search(index_dir, embeddings, rows, want, rerank=per_hit, nprobe=probe["nprobe"])

    def widen() -> bool:
        # nprobe is tuned for depth k; an archive that still runs out of candidates probes twice as many lists
        if probe["nprobe"] >= probe["lists"]:
            return False
        probe["nprobe"] = min(probe["lists"], 2 * probe["nprobe"])
        return True

    fetched = fetch_distinct(batched_search, stored.get, queries, k, dedup_threshold, count, widen)
    mean, std = background_stats(pool_sample(embeddings), queries)  # (C,), (C,)

    out = run_dir(root, model_id, run)
    (out / SUMMARY).unlink(missing_ok=True)  # no done marker while the run is being (re)written
    kept_hits, results = [], []
    for c, (concept, found) in enumerate(zip(concepts, fetched, strict=True)):
        kept, dropped = found.hits, found.duplicates_removed
        power = measure_strength(np.array([h.score for h in kept]), mean[c], std[c], count)
        query = {
            "concept": concept.name,
            "context": concept.context,
            "synonyms": list(concept.synonyms),
            "prompts": list(concept.prompts),
            "templates": template_set,
            "model": str(loaded.ref),
            "model_id": model_id,
            "index": {"version": version, "factory": info["factory"], "nprobe": info["nprobe"], "rerank": factor},
            "nprobe_widest": probe["nprobe"],  # lists the widest search probed (widened when the index ran short)
            "k": k,
            "items": len(kept),
            "candidates_searched": found.candidates,
            "searches": found.searches,
            "fetch": {"first": OVERFETCH, "growth": GROWTH, "cap": MAX_FETCH},  # candidates per wanted item
            "dedup_threshold": dedup_threshold,
            "duplicates_removed": dropped,
            "short_reason": found.short_reason,
            "strength": round(power.strength, 6),
            "standouts": power.standouts,
            "standout_z": round(power.standout_z, 6),
            "null_strength": round(power.null_strength, 6),
            "weak": power.weak,
            "weak_reason": power.reason,
            "pool_mean": round(power.pool_mean, 6),  # background μ (see archives/strength.py)
            "pool_std": round(power.pool_std, 6),  # background σ
        }
        _write_items(out / concept.slug, kept)
        _write_json(out / concept.slug / QUERY, query)
        kept_hits.append(kept)
        results.append(
            ArchiveResult(
                concept.name,
                concept.slug,
                len(kept),
                dropped,
                power.strength,
                power.standouts,
                power.weak,
                power.reason,
                found.short_reason,
            )
        )
    if images:
        _write_images(out, concepts, kept_hits, pool, progress)
    else:
        for concept in concepts:
            (out / concept.slug / IMAGES).unlink(missing_ok=True)
    _write_summary(out, loaded, template_set, version, k, results)
    return results


def _write_items(folder: Path, hits: list[Hit]) -> None:
    table = pa.table(
        {
            "rank": pa.array([h.rank for h in hits], pa.int32()),
            "id": pa.array([h.id for h in hits], pa.int64()),
            "score": pa.array([h.score for h in hits], pa.float32()),
            "key": pa.array([h.key for h in hits], pa.string()),
            "url": pa.array([h.url for h in hits], pa.string()),
        },
        schema=ITEMS_SCHEMA,
    )
    with atomic_path(folder / ITEMS) as tmp:
        pq.write_table(table, tmp)


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def _write_images(
    out: Path, concepts: list[Concept], kept_hits: list[list[Hit]], pool: Path, progress: bool = False
) -> None:
    """images.tar per archive, with each pool shard read once for all concepts."""
    from tqdm import tqdm

    wanted: dict[int, set[str]] = {}
    for hits in kept_hits:
        for h in hits:
            wanted.setdefault(split_id(h.id)[0], set()).add(h.key)
    data: dict[str, bytes] = {}
    for shard, keys in tqdm(sorted(wanted.items()), desc="archive images", unit="shard", disable=not progress):
        tar = pool / f"{shard:05d}.tar"
        if not tar.is_file():
            raise FileNotFoundError(f"pool shard not found: {tar} (give --pool, or --no-images)")
        for sample in read_shard(str(tar)).samples:
            if sample.key in keys and sample.data:
                data[sample.key] = sample.data
    for concept, hits in zip(concepts, kept_hits, strict=True):
        members = [(image_member(h.rank, h.key), data[h.key]) for h in hits if h.key in data]
        with atomic_path(out / concept.slug / IMAGES) as tmp:
            tmp.write_bytes(images_tar_bytes(members))


def _write_summary(
    out: Path, loaded: LoadedModel, template_set: str, version: str, k: int, results: list[ArchiveResult]
) -> None:
    """archives.json, the run's done marker; archives built earlier into the same run and not rebuilt are kept."""
    entries = {r.slug: asdict(r) for r in results}
    for folder in sorted(p for p in out.iterdir() if (p / QUERY).is_file() and p.name not in entries):
        query = json.loads((folder / QUERY).read_text())
        items = pq.read_metadata(folder / ITEMS).num_rows
        entries[folder.name] = asdict(
            ArchiveResult(
                query["concept"],
                folder.name,
                items,
                query["duplicates_removed"],
                query["strength"],
                query["standouts"],
                query["weak"],
                query.get("weak_reason", ""),
                query.get("short_reason", ""),
            )
        )
    summary = {
        "model": str(loaded.ref),
        "model_id": loaded.ref.model_id,
        "run": out.name,
        "index_version": version,
        "templates": template_set,
        "k": k,
        "concepts": [entries[s] for s in sorted(entries)],
    }
    _write_json(out / SUMMARY, summary)
