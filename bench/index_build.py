"""Benchmark: index build time, peak memory and recall@10, coarchive vs autofaiss, same vectors and budget;
then query latency p50/p99 and batched vs one-at-a-time search on coarchive's index.

usage: .venv/bin/python -m bench.index_build [--n 1000000] [--dim 512] [--max-memory 2G] [--peer-venv DIR]
       .venv/bin/python -m bench.index_build --toy-pool 20000    # the embedded toy pool instead
       .venv/bin/python -m bench.index_build --n 2000 --dim 32 --max-memory 64M    # a smoke-sized run
Vectors: clustered unit vectors (1,000 centres + noise); queries: draws from the same mixture, 200 to tune
coarchive's nprobe and 200 others, held out, to measure recall. With --toy-pool: a generated toy pool embedded by
the toy CLIP; queries: text prompts of concept names, two templates to tune on and two others held out.
Without the peer virtualenv (shared/peers/setup_venv.sh) the autofaiss row says it was skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.peakmem import run_measured

ROWS_PER_SHARD = 250_000


def clustered(rng: np.random.Generator, centres: np.ndarray, count: int, noise: float) -> np.ndarray:
    """`count` unit vectors drawn around random centres (float32)."""
    labels = rng.integers(0, len(centres), count)
    x = centres[labels] + np.float32(noise / np.sqrt(centres.shape[1])) * rng.standard_normal(
        (count, centres.shape[1]), dtype=np.float32
    )
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_vectors(work: Path, n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Write the same vectors in coarchive's layout (emb/) and autofaiss's (af/); return held-out queries."""
    from pipeline.pool.embed import EMBED_SCHEMA, sample_id

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    (work / "emb").mkdir(parents=True, exist_ok=True)
    (work / "af").mkdir(parents=True, exist_ok=True)
    for shard, start in enumerate(range(0, n, ROWS_PER_SHARD)):
        count = min(ROWS_PER_SHARD, n - start)
        vectors = clustered(rng, centres, count, 0.35).astype(np.float16)
        np.save(work / "emb" / f"{shard:05d}.npy", vectors)
        np.save(work / "af" / f"emb_{shard:04d}.npy", vectors.astype(np.float32))  # identical values
        ids = pa.array([sample_id(shard, r) for r in range(count)], pa.int64())
        empty = pa.array([""] * count)
        table = pa.table(
            {
                "id": ids,
                "key": empty,
                "url": empty,
                "caption": empty,
                "width": pa.array([0] * count, pa.int32()),
                "height": pa.array([0] * count, pa.int32()),
                "status": pa.array(["ok"] * count),
            },
            schema=EMBED_SCHEMA,
        )
        pq.write_table(table, work / "emb" / f"{shard:05d}.parquet")
    return clustered(rng, centres, 400, 0.35)  # 200 to tune nprobe on, 200 held out to measure


def write_toy_vectors(work: Path, pool_size: int, shard_size: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """Generate and embed a toy pool into emb/ (coarchive) and af/ (autofaiss); return tune and held-out queries."""
    from pipeline.app.cli import DEFAULT_QUERY_CONCEPTS
    from pipeline.core.executors import LocalExecutor
    from pipeline.core.models import load_model
    from pipeline.core.stage import run_stage
    from pipeline.pool.embed import EmbedStage
    from pipeline.toy.export import generate_toy_world
    from pipeline.toy.quality import TEMPLATES, text_embeddings
    from pipeline.toy.world import WorldSpec

    generate_toy_world(
        work / "toy", WorldSpec(), pool_size=pool_size, shard_size=shard_size, bench_size=0, progress=False
    )
    loaded = load_model("toy", device="cpu")
    stage = EmbedStage(str(work / "toy" / "pool"), str(work / "toy"), loaded.ref)
    run_stage(stage, LocalExecutor(), progress=False)
    (work / "af").mkdir(parents=True, exist_ok=True)
    (work / "emb").mkdir(parents=True, exist_ok=True)
    for npy in sorted(Path(stage.out_dir).glob("*.npy")):
        for suffix in (".npy", ".parquet"):
            (work / "emb" / f"{npy.stem}{suffix}").write_bytes(npy.with_suffix(suffix).read_bytes())
        np.save(work / "af" / f"emb_{int(npy.stem):04d}.npy", np.load(npy).astype(np.float32))
    concepts = list(DEFAULT_QUERY_CONCEPTS)
    tune = text_embeddings(loaded, concepts, TEMPLATES[:2]).numpy()  # (q, d) float32
    held = text_embeddings(loaded, concepts, TEMPLATES[2:]).numpy()
    return tune, held


def shard_sizes(emb: Path) -> list[int]:
    """Rows per embedding shard, in shard order (autofaiss numbers vectors through the files in that order)."""
    return [len(np.load(p, mmap_mode="r")) for p in sorted(emb.glob("*.npy"))]


def build_ours(work: Path, max_memory: str) -> None:
    """The measured child process: coarchive's build_index with its own executor."""
    from pipeline.core.executors import LocalExecutor
    from pipeline.core.io import parse_size
    from pipeline.pool.index import build_index

    queries = np.load(work / "tune_queries.npy")
    info = build_index(
        work / "emb", work / "ours", queries, LocalExecutor(), max_memory=parse_size(max_memory), progress=False
    )
    print(json.dumps(info))


def recall_and_latency(work: Path, queries: np.ndarray, peer_index: Path | None, peer_params: str | None) -> dict:
    """recall@10 of both indexes on the held-out queries, and coarchive's query latency."""
    import faiss

    from pipeline.pool.index import exact_search, open_index, recall_at_k

    _, exact = exact_search(work / "emb", queries, 10)
    ours = open_index(work / "ours")
    _, found = ours.search(queries, 10)
    out = {"ours_recall@10": recall_at_k(found, exact, 10)}
    latencies = []
    for q in queries:
        start = time.perf_counter()
        ours.search(q[None], 10)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    ours.search(queries, 10)
    batched = time.perf_counter() - start
    out.update(
        p50_ms=1000 * np.percentile(latencies, 50),
        p99_ms=1000 * np.percentile(latencies, 99),
        loop_qps=len(queries) / sum(latencies),
        batched_qps=len(queries) / batched,
    )
    if peer_index is not None:
        theirs = faiss.read_index(str(peer_index))
        if peer_params:
            faiss.ParameterSpace().set_index_parameters(theirs, peer_params)
        _, found = theirs.search(queries, 10)
        sizes = shard_sizes(work / "emb")
        out["peer_recall@10"] = recall_at_k(found.astype(np.int64), _autofaiss_ids(exact, sizes), 10)
    return out


def _autofaiss_ids(exact: np.ndarray, sizes: list[int]) -> np.ndarray:
    """autofaiss numbers vectors 0..n-1 in file order; map coarchive's shard<<32|row ids onto that."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return offsets[exact >> 32] + (exact & 0xFFFFFFFF)


def main(argv: list[str] | None = None) -> int:
    """Generate vectors once, build with each tool in its own measured process, print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--max-memory", default="2G")
    parser.add_argument("--peer-venv", default=str(Path.home() / ".cache/coarchive-peers/venv"))
    parser.add_argument("--toy-pool", type=int, default=0, help="index a toy pool of this many images instead")
    parser.add_argument("--work", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        build_ours(Path(args.child), args.max_memory)
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="coarchive-index-bench-"))
    if args.toy_pool:
        tune, queries = write_toy_vectors(work, args.toy_pool)
    else:
        tune, queries = np.split(write_vectors(work, args.n, args.dim), 2)
    np.save(work / "tune_queries.npy", tune)
    rows = [
        (
            "coarchive index",
            run_measured(
                [sys.executable, "-m", "bench.index_build", "--child", str(work), "--max-memory", args.max_memory]
            ),
        )
    ]
    autofaiss = Path(args.peer_venv) / "bin" / "autofaiss"
    peer_index, peer_params = None, None
    skipped = f"autofaiss build_index: skipped, no peer virtualenv at {args.peer_venv} (shared/peers/setup_venv.sh)"
    if autofaiss.is_file():
        skipped = ""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        rows.append(
            (
                "autofaiss build_index",
                run_measured(
                    [
                        str(autofaiss),
                        "build_index",
                        f"--embeddings={work / 'af'}",
                        f"--index_path={work / 'af.index'}",
                        f"--index_infos_path={work / 'af_infos.json'}",
                        "--metric_type=ip",
                        f"--max_index_memory_usage={args.max_memory}",
                        "--current_memory_available=8G",
                    ],
                    env=env,
                ),
            )
        )
        if (work / "af.index").is_file():
            peer_index = work / "af.index"
            peer_params = json.loads((work / "af_infos.json").read_text()).get("index_param")
    if rows[0][1]["code"]:
        sys.exit(f"coarchive index failed:\n{rows[0][1]['tail']}")
    quality = recall_and_latency(work, queries, peer_index, peer_params)
    ours_info = json.loads([line for line in rows[0][1]["tail"].splitlines() if line.startswith("{")][-1])
    factories = {
        "coarchive index": f"{ours_info['factory']} nprobe={ours_info['nprobe']}",
        "autofaiss build_index": peer_params or "",
    }
    recalls = {"coarchive index": quality["ours_recall@10"], "autofaiss build_index": quality.get("peer_recall@10")}
    data = (
        f"a {args.toy_pool}-image toy pool embedded by the toy CLIP ({sum(shard_sizes(work / 'emb'))} x "
        f"{tune.shape[1]}), {len(queries)} held-out text queries"
        if args.toy_pool
        else f"{args.n} x {args.dim} clustered vectors, {len(queries)} held-out queries"
    )
    print(f"\n{data}, budget {args.max_memory}, {os.cpu_count()} cores, build s = whole process\n")
    print("| tool | index | build s | peak memory | recall@10 |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        recall = recalls.get(name)
        print(
            f"| {name} | {factories.get(name, '')} | {r['seconds']:.0f} | {r['peak_mib']:.0f} MiB | {recall:.3f} |"
            if r["code"] == 0 and recall is not None
            else f"| {name} | failed | | | |"
        )
    if skipped:
        print(f"| {skipped} | | | | |")
    print("\n| coarchive query | p50 ms | p99 ms | queries/s |")
    print("|---|---|---|---|")
    print(f"| one at a time | {quality['p50_ms']:.2f} | {quality['p99_ms']:.2f} | {quality['loop_qps']:.0f} |")
    print(f"| batched ({len(queries)} in one call) | | | {quality['batched_qps']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
