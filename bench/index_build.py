"""Benchmark: index build time, peak memory, recall@10 and recall@1000, coarchive vs autofaiss, same vectors and
budget; query latency p50/p99; one batched archive pass (many concepts x deep k, re-ranked) on coarchive's index.

usage: .venv/bin/python -m bench.index_build [--vectors 1000000] [--dim 512] [--max-memory 4G] [--peer-venv DIR]
           [--peer-timeout 3600 | --no-peer]
           [--device cpu] [--archive-concepts 10000 --archive-k 1000] [--centres 1000]
       .venv/bin/python -m bench.index_build --toy-pool 20000    # the embedded toy pool instead
       .venv/bin/python -m bench.index_build --vectors 2000 --dim 32 --max-memory 64M    # a smoke-sized run
Vectors: clustered unit vectors (--centres, 1,000 by default, + noise; more centres spread a deep top-k over more
inverted lists), written as fp16 shards of 250,000 (one block in memory at
a time). Queries are text-like: off the image manifold, shifted by one shared "modality gap" direction and noisier
than the images, as CLIP text embeddings sit apart from image embeddings; 200 tune coarchive's nprobe, 200 others
(held out) measure recall. With --toy-pool: a generated toy pool embedded by the toy CLIP; queries: text prompts of
concept names, two templates to tune on and two others held out. Without the peer virtualenv
(shared/peers/setup_venv.sh) the autofaiss row says it was skipped. Both tools run with OMP_WAIT_POLICY=PASSIVE
(on a shared 2-core machine, spinning OpenMP threads slow faiss several-fold) and with the OpenBLAS kernel that
coarchive names for this CPU (pipeline.core.blas_policy: faiss's bundled OpenBLAS may not recognise the CPU).
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

from bench.peakmem import last_json, run_measured
from pipeline.core.blas_policy import name_blas_kernel

ROWS_PER_SHARD = 250_000


def clustered(rng: np.random.Generator, centres: np.ndarray, count: int, noise: float) -> np.ndarray:
    """`count` unit vectors drawn around random centres (float32)."""
    labels = rng.integers(0, len(centres), count)
    x = centres[labels] + np.float32(noise / np.sqrt(centres.shape[1])) * rng.standard_normal(
        (count, centres.shape[1]), dtype=np.float32
    )
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def text_like(rng: np.random.Generator, centres: np.ndarray, count: int) -> np.ndarray:
    """`count` unit queries (count, d) float32: a centre, plus a shared gap direction and heavy noise."""
    dim = centres.shape[1]
    gap = np.random.default_rng(12345).standard_normal(dim).astype(np.float32)
    gap /= np.linalg.norm(gap)
    labels = rng.integers(0, len(centres), count)
    noise = rng.standard_normal((count, dim), dtype=np.float32) * np.float32(1.2 / np.sqrt(dim))
    x = centres[labels] + np.float32(0.8) * gap + noise
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_vectors(work: Path, n: int, dim: int, seed: int = 0, peer: bool = True, centres: int = 1000) -> np.ndarray:
    """Write the same vectors in coarchive's layout (emb/) and, with `peer`, autofaiss's (af/); return text-like
    queries (400)."""
    from pipeline.pool.embed import EMBED_SCHEMA, sample_id

    rng = np.random.default_rng(seed)
    middles = rng.standard_normal((centres, dim), dtype=np.float32)
    middles /= np.linalg.norm(middles, axis=1, keepdims=True)
    (work / "emb").mkdir(parents=True, exist_ok=True)
    (work / "af").mkdir(parents=True, exist_ok=True)
    for shard, start in enumerate(range(0, n, ROWS_PER_SHARD)):
        count = min(ROWS_PER_SHARD, n - start)
        vectors = clustered(rng, middles, count, 0.35).astype(np.float16)
        np.save(work / "emb" / f"{shard:05d}.npy", vectors)
        if peer:
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
    np.save(work / "centres.npy", middles)  # the archive pass draws its concept queries from the same world
    return text_like(rng, middles, 400)  # 200 to tune nprobe on, 200 held out to measure


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


def build_ours(work: Path, max_memory: str, device: str) -> None:
    """The measured child process: coarchive's build_index with its own executor."""
    from pipeline.core.executors import LocalExecutor
    from pipeline.core.io import parse_size
    from pipeline.pool.index import BuildOptions, build_index
    from pipeline.pool.index_device import resolve_device

    queries = np.load(work / "tune_queries.npy")
    options = BuildOptions(resolve_device(device))
    info = build_index(
        work / "emb", work / "ours", queries, LocalExecutor(), parse_size(max_memory), progress=False, options=options
    )
    print(json.dumps(info))


def archive_pass(work: Path, concepts: int, k: int) -> None:
    """The measured child process: one batched search of `concepts` text-like queries for k hits each, re-ranked."""
    from pipeline.pool.index import open_index
    from pipeline.pool.index_rerank import StoredEmbeddings, search_ids

    queries = text_like(np.random.default_rng(7), np.load(work / "centres.npy"), concepts)
    factor = json.loads((work / "ours" / "index.json").read_text())["rerank"]
    index = open_index(work / "ours", depth=k)  # the lists an archive of depth k probes
    start = time.perf_counter()
    _, ids = search_ids(index, queries, k, factor, StoredEmbeddings(work / "emb"))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "hits": int((ids >= 0).sum()), "rerank": factor}))


def recall_and_latency(work: Path, queries: np.ndarray, peer_index: Path | None, peer_params: str | None) -> dict:
    """recall@10 and recall@1000 of both indexes on the held-out queries (coarchive's with and without its
    re-ranking), and coarchive's query latency."""
    import faiss

    from pipeline.pool.index import exact_search, open_index, recall_at_k, set_nprobe
    from pipeline.pool.index_depth import nprobe_for_depth
    from pipeline.pool.index_rerank import StoredEmbeddings, search_ids

    deep = min(1000, sum(shard_sizes(work / "emb")))
    _, exact = exact_search(work / "emb", queries, deep)
    ours = open_index(work / "ours")
    info = json.loads((work / "ours" / "index.json").read_text())
    factor = info["rerank"]
    stored = StoredEmbeddings(work / "emb")
    out = {}
    for name, rerank in (("ours", factor), ("ours_plain", 0)):
        if name == "ours_plain" and not factor:
            continue
        found10 = search_ids(ours, queries, 10, rerank, stored)[1]
        set_nprobe(ours, nprobe_for_depth(info, deep))  # the lists a search of that depth probes (query, archives)
        found_deep = search_ids(ours, queries, deep, rerank, stored)[1]
        set_nprobe(ours, info["nprobe"])
        out[name] = (recall_at_k(found10, exact, 10), recall_at_k(found_deep, exact, deep))
    latencies = []
    for q in queries:
        start = time.perf_counter()
        search_ids(ours, q[None], 10, factor, stored)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    search_ids(ours, queries, 10, factor, stored)
    batched = time.perf_counter() - start
    out.update(
        deep=deep,
        p50_ms=1000 * np.percentile(latencies, 50),
        p99_ms=1000 * np.percentile(latencies, 99),
        loop_qps=len(queries) / sum(latencies),
        batched_qps=len(queries) / batched,
    )
    if peer_index is not None:
        theirs = faiss.read_index(str(peer_index))
        if peer_params:
            faiss.ParameterSpace().set_index_parameters(theirs, peer_params)
        truth = _autofaiss_ids(exact, shard_sizes(work / "emb"))
        found10 = theirs.search(queries, 10)[1].astype(np.int64)
        found_deep = theirs.search(queries, deep)[1].astype(np.int64)
        out["peer"] = (recall_at_k(found10, truth, 10), recall_at_k(found_deep, truth, deep))
    return out


def _autofaiss_ids(exact: np.ndarray, sizes: list[int]) -> np.ndarray:
    """autofaiss numbers vectors 0..n-1 in file order; map coarchive's shard<<32|row ids onto that."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return offsets[exact >> 32] + (exact & 0xFFFFFFFF)


def main(argv: list[str] | None = None) -> int:
    """Generate vectors once, build with each tool in its own measured process, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", "--n", dest="n", type=int, default=1_000_000, help="vectors to index")
    parser.add_argument("--dim", type=int, default=512, help="their dimension")
    parser.add_argument("--max-memory", default="4G", help="memory budget of the served index, for both tools")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="coarchive's build device")
    parser.add_argument("--peer-venv", default=str(Path.home() / ".cache/coarchive-peers/venv"))
    parser.add_argument(
        "--no-peer", action="store_true", help="coarchive's rows only, and no float32 copies written for autofaiss"
    )
    parser.add_argument("--peer-memory", default="8G", help="autofaiss --current_memory_available")
    parser.add_argument(
        "--peer-timeout", type=float, default=0, help="stop autofaiss after this many seconds (0: never)"
    )
    parser.add_argument("--centres", type=int, default=1000, help="clusters the vectors are drawn around")
    parser.add_argument("--toy-pool", type=int, default=0, help="index a toy pool of this many images instead")
    parser.add_argument("--archive-concepts", type=int, default=0, help="also time one archive pass of N concepts")
    parser.add_argument("--archive-k", type=int, default=1000, help="hits per concept in the archive pass")
    parser.add_argument("--work", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-archive", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    name_blas_kernel()  # as `coarchive index` does; the peer's faiss gets the same OpenBLAS kernel through the env
    if args.peer_timeout < 0:
        parser.error(f"--peer-timeout must be seconds >= 0, got {args.peer_timeout}")
    if args.centres < 1:
        parser.error(f"--centres must be positive, got {args.centres}")
    if args.child:
        build_ours(Path(args.child), args.max_memory, args.device)
        return 0
    if args.child_archive:
        archive_pass(Path(args.child_archive), args.archive_concepts, args.archive_k)
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="coarchive-index-bench-"))
    autofaiss = Path(args.peer_venv) / "bin" / "autofaiss"
    with_peer = autofaiss.is_file() and not args.no_peer
    if args.toy_pool:
        tune, queries = write_toy_vectors(work, args.toy_pool)
    else:
        tune, queries = np.split(write_vectors(work, args.n, args.dim, peer=with_peer, centres=args.centres), 2)
    np.save(work / "tune_queries.npy", tune)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    child = [sys.executable, "-m", "bench.index_build", "--max-memory", args.max_memory, "--device", args.device]
    rows = [("coarchive index", run_measured([*child, "--child", str(work)], env=env))]
    peer_index, peer_params = None, None
    skipped = ""  # why the peer's row is empty
    if args.no_peer:
        skipped = "autofaiss build_index: skipped (--no-peer)"
    elif not with_peer:
        skipped = f"autofaiss build_index: skipped, no peer virtualenv at {args.peer_venv} (shared/peers/setup_venv.sh)"
    if with_peer:
        peer_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        command = [
            str(autofaiss),
            "build_index",
            f"--embeddings={work / 'af'}",
            f"--index_path={work / 'af.index'}",
            f"--index_infos_path={work / 'af_infos.json'}",
            "--metric_type=ip",
            f"--max_index_memory_usage={args.max_memory}",
            f"--current_memory_available={args.peer_memory}",
        ]
        rows.append(("autofaiss build_index", run_measured(command, env=peer_env, timeout=args.peer_timeout or None)))
        if (work / "af.index").is_file():
            peer_index = work / "af.index"
            peer_params = json.loads((work / "af_infos.json").read_text()).get("index_param")
    if rows[0][1]["code"]:
        sys.exit(f"coarchive index failed:\n{rows[0][1]['tail']}")
    quality = recall_and_latency(work, queries, peer_index, peer_params)
    info = last_json(rows[0][1])
    rerank = f", rerank {info['rerank']} x k" if info["rerank"] else ""
    deep_probe = f" ({info['deep']['nprobe']} at depth {info['deep']['depth']})" if info.get("deep") else ""
    factories = {
        "coarchive index": f"{info['factory']} nprobe={info['nprobe']}{deep_probe}{rerank}",
        "autofaiss build_index": peer_params or "",
    }
    recalls = {"coarchive index": quality["ours"], "autofaiss build_index": quality.get("peer")}
    data = (
        f"a {args.toy_pool}-image toy pool embedded by the toy CLIP ({sum(shard_sizes(work / 'emb'))} x "
        f"{tune.shape[1]}), {len(queries)} held-out text queries"
        if args.toy_pool
        else f"{args.n} x {args.dim} vectors in {args.centres} clusters, {len(queries)} held-out text-like queries"
    )
    deep = quality["deep"]
    print(f"\n{data}, budget {args.max_memory}, {os.cpu_count()} cores, build s = whole process\n")
    print(f"| tool | index | build s | peak memory | peak anonymous | recall@10 | recall@{deep} |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        recall = recalls.get(name)
        if r.get("timed_out"):
            print(
                f"| {name} | did not finish, stopped | > {r['seconds']:.0f} | {r['peak_mib']:.0f} MiB | "
                f"{r['peak_anon_mib']:.0f} MiB | | |"
            )
            continue
        print(
            f"| {name} | {factories.get(name, '')} | {r['seconds']:.0f} | {r['peak_mib']:.0f} MiB | "
            f"{r['peak_anon_mib']:.0f} MiB | {recall[0]:.3f} | {recall[1]:.3f} |"
            if r["code"] == 0 and recall is not None
            else f"| {name} | failed | | | | | |"
        )
    if "ours_plain" in quality:
        plain = quality["ours_plain"]
        print(
            f"| coarchive index, re-ranking off | {info['factory']} nprobe={info['nprobe']}{deep_probe} | | | | "
            f"{plain[0]:.3f} | {plain[1]:.3f} |"
        )
    if skipped:
        print(f"| {skipped} | | | | | | |")
    seconds = info["seconds"]
    print(
        f"\ncoarchive build phases (s): train {seconds['train']}, add {seconds['add']}, merge {seconds['merge']}, "
        f"tune {seconds['tune']}; backend {info['backend']}"
    )
    print("\n| coarchive query | p50 ms | p99 ms | queries/s |")
    print("|---|---|---|---|")
    print(f"| one at a time | {quality['p50_ms']:.2f} | {quality['p99_ms']:.2f} | {quality['loop_qps']:.0f} |")
    print(f"| batched ({len(queries)} in one call) | | | {quality['batched_qps']:.0f} |")
    if args.archive_concepts:
        command = [*child, "--archive-concepts", str(args.archive_concepts), "--archive-k", str(args.archive_k)]
        measured = run_measured([*command, "--child-archive", str(work)], env=env)
        if measured["code"]:
            sys.exit(f"archive pass failed:\n{measured['tail']}")
        result = last_json(measured)
        print("\n| archive pass | concepts | k | re-rank | search s | process s | peak memory | peak anonymous |")
        print("|---|---|---|---|---|---|---|---|")
        print(
            f"| one batched search | {args.archive_concepts} | {args.archive_k} | {result['rerank']} x k | "
            f"{result['seconds']:.2f} | {measured['seconds']:.1f} | {measured['peak_mib']:.0f} MiB | "
            f"{measured['peak_anon_mib']:.0f} MiB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
