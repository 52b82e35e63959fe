"""Benchmark: embedding throughput from img2dataset shards, coarchive vs clip-retrieval, same model and batch.

usage: .venv/bin/python -m bench.embed_throughput [--images 4000] [--peer-venv ~/.cache/coarchive-peers/venv]
       .venv/bin/python -m bench.embed_throughput --images 40 --per-shard 20 --batch-size 16 --dask-workers 0  # smoke
The peer virtualenv comes from shared/peers/setup_venv.sh; without it the peer row says it was skipped.
Besides the end-to-end runs, the loader's ceiling: the embed stage with the model's forward pass replaced by a
no-op (read, decode, preprocess, batch, write), once per --loader-workers setting.
Exit status 1 when one of coarchive's own runs fails (a peer's failure is a row of the table).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from bench.peakmem import run_measured
from pipeline.toy.export import generate_toy_world
from pipeline.toy.world import WorldSpec


def _workers_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"loader workers: comma-separated counts >= 0, got {text!r}")
    return values


def loader_label(workers: int) -> str:
    """How a row names an embed --loader-workers setting."""
    return "2 decode threads" if workers == 0 else f"{workers} loader processes"


def loader_ceiling(pool: str, root: str, batch_size: int, loader_workers: int) -> int:
    """Run the embed stage with a no-op model in this process; print LOADER_IMAGES_PER_S for the stage's own loop."""
    import torch

    from pipeline.core.executors import LocalExecutor
    from pipeline.core.models import ModelRef
    from pipeline.core.stage import run_stage
    from pipeline.pool.embed import EmbedStage

    class NoModel(EmbedStage):
        """The embed stage with the forward pass replaced by zeros of the right shape."""

        def _forward(self, loaded, pixels: torch.Tensor) -> torch.Tensor:
            return torch.zeros((len(pixels), loaded.embed_dim), device=pixels.device)

    stage = NoModel(pool, root, ModelRef("toy"), batch_size=batch_size, loader_workers=loader_workers)
    from pipeline.pool.embed import _worker_model

    _worker_model(stage.model, stage.device)  # the model load is not the loader's time
    start = time.perf_counter()
    report = run_stage(stage, LocalExecutor(), progress=False)
    seconds = time.perf_counter() - start
    if report.failed:
        print(f"failed shards: {report.failed}", file=sys.stderr)
        return 1
    print(f"LOADER_IMAGES_PER_S {report.totals().get('embedded', 0) / seconds:.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Generate 256-px shards once, embed them with each tool, print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dask-workers", type=int, default=2, help="workers of the Dask row (0: no Dask row)")
    parser.add_argument(
        "--loader-workers",
        type=_workers_list,
        default=[0, 2],
        help="comma-separated embed --loader-workers settings, a row each, end to end and loader only (default 0,2)",
    )
    parser.add_argument(
        "--lower-precision",
        choices=["bf16", "none"],
        default="bf16",
        help="also a row with embed --precision bf16 (bf16 autocast on the CPU; none: no such row)",
    )
    parser.add_argument("--peer-venv", default=str(Path.home() / ".cache/coarchive-peers/venv"))
    parser.add_argument("--work", default=None)
    parser.add_argument("--ceiling-of", default=None, help=argparse.SUPPRESS)  # internal: one loader-only run
    args = parser.parse_args(argv)
    if args.images < 1 or args.per_shard < 1 or args.batch_size < 1 or args.dask_workers < 0:
        parser.error("--images, --per-shard and --batch-size must be positive, --dask-workers not negative")
    if args.ceiling_of:
        return loader_ceiling(args.ceiling_of, args.work, args.batch_size, args.loader_workers[0])
    shard_count = -(-args.images // args.per_shard)
    work = Path(args.work or tempfile.mkdtemp(prefix="coarchive-bench-"))
    generate_toy_world(
        work / "world",
        WorldSpec(image_size=256),
        seed=1,
        pool_size=args.images,
        shard_size=args.per_shard,
        bench_size=0,
        progress=False,
    )
    pool = work / "world" / "pool"
    env = {**os.environ, "COARCHIVE_CACHE": str(work / "cache")}
    coarchive = [
        sys.executable,
        "-m",
        "pipeline.app.cli",
        "--quiet",
        "embed",
        "--pool",
        str(pool),
        "--batch-size",
        str(args.batch_size),
        "--model",
        "toy",  # the peer loads the same toy checkpoint
    ]
    runs = []
    for workers in args.loader_workers:
        name = (
            f"coarchive embed, batch {args.batch_size} (CPU forward chunks of 32), in process, {loader_label(workers)}"
        )
        runs.append((name, "ours_local" if workers == 0 else f"ours_lw{workers}", ["--loader-workers", str(workers)]))
    if args.lower_precision != "none":
        first = args.loader_workers[0]
        extra = ["--loader-workers", str(first), "--precision", args.lower_precision]
        name = f"coarchive embed, same, {loader_label(first)}, --precision {args.lower_precision}"
        runs.append((name, "ours_bf16", extra))
    if args.dask_workers:
        extra = ["--executor", "dask", "--workers", str(args.dask_workers)]
        runs.append((f"coarchive embed, same, Dask LocalCluster of {args.dask_workers} workers", "ours_dask", extra))
    rows = [
        (name, run_measured([*coarchive, "--root", str(work / root), *extra], env=env)) for name, root, extra in runs
    ]
    ceilings = []
    for workers in args.loader_workers:
        command = [sys.executable, "-m", "bench.embed_throughput", "--ceiling-of", str(pool)]
        command += ["--work", str(work / f"ceiling_lw{workers}"), "--batch-size", str(args.batch_size)]
        result = run_measured([*command, "--loader-workers", str(workers)], env=env)
        loop = [line.split()[1] for line in result["tail"].splitlines() if line.startswith("LOADER_IMAGES_PER_S ")]
        result["loop_rate"] = float(loop[-1]) if loop else None
        ceilings.append((f"loader only (model replaced by a no-op), {loader_label(workers)}", result))
    ours_failed = any(r["code"] for _, r in rows + ceilings)
    notes = [] if args.dask_workers else ["coarchive embed on Dask: not run (--dask-workers 0)"]
    peer_python = Path(args.peer_venv) / "bin" / "python"
    if not peer_python.is_file():
        notes.append(
            f"clip-retrieval inference: skipped, no peer virtualenv at {args.peer_venv} (shared/peers/setup_venv.sh)"
        )
    else:
        from pipeline.core.models import toy_checkpoint  # imports torch: only the peer's side needs it here

        config_dir = str(resources.files("pipeline.core") / "model_configs")
        checkpoint = str(toy_checkpoint())
        shards = f"{pool}/{{00000..{shard_count - 1:05d}}}.tar"
        # the last row: clip-retrieval with the wait policy coarchive embed sets itself, so that the table shows how
        # much of the lead that one setting is
        configs = (("1", args.batch_size, None), (None, args.batch_size, None), (None, 32, None), (None, 32, "PASSIVE"))
        unset = ("PYTHONPATH", "VIRTUAL_ENV", "OMP_WAIT_POLICY")  # the peer's own venv; each row names its policy
        for threads, batch, policy in configs:
            peer_env = {k: v for k, v in os.environ.items() if k not in unset}
            if threads:
                peer_env["OMP_NUM_THREADS"] = threads
            if policy:
                peer_env["OMP_WAIT_POLICY"] = policy
            out = work / f"cr_omp{threads or 'default'}_b{batch}{'_' + policy.lower() if policy else ''}"
            command = [
                str(peer_python),
                str(Path(__file__).parent / "cr_peer.py"),
                config_dir,
                checkpoint,
                "--input_dataset",
                shards,
                "--output_folder",
                str(out),
                "--input_format",
                "webdataset",
                "--enable_text",
                "False",
                "--enable_metadata",
                "False",
                "--batch_size",
                str(batch),
                "--num_prepro_workers",
                "2",
            ]
            rows.append(
                (
                    f"clip-retrieval inference, batch {batch}, OMP_NUM_THREADS={threads or 'default'}"
                    + (f", OMP_WAIT_POLICY={policy}" if policy else ""),
                    run_measured(command, env=peer_env),
                )
            )
    print(
        f"\n{args.images} toy JPEGs of 256 px in {shard_count} shards, toy CLIP (96 px ViT), "
        f"batch {args.batch_size}, {os.cpu_count()} cores\n"
    )
    print("| tool | wall s | images/s | peak memory (process tree) |")
    print("|---|---|---|---|")
    for name, r in rows:
        if r["code"]:
            print(f"{name}: exit code {r['code']}\n{r['tail']}", file=sys.stderr)
            print(f"| {name} | failed (exit code {r['code']}) | | |")
            continue
        print(f"| {name} | {r['seconds']:.1f} | {args.images / r['seconds']:.0f} | {r['peak_mib']:.0f} MiB |")
    for note in notes:
        print(f"| {note} | | | |")
    print(
        "\n| loader ceiling | wall s (whole process) | images/s (whole process) | images/s (stage loop) | peak memory |"
    )
    print("|---|---|---|---|---|")
    for name, r in ceilings:
        if r["code"] or r["loop_rate"] is None:
            print(f"{name}: exit code {r['code']}\n{r['tail']}", file=sys.stderr)
            print(f"| {name} | failed (exit code {r['code']}) | | | |")
            continue
        rate = args.images / r["seconds"]
        print(f"| {name} | {r['seconds']:.1f} | {rate:.0f} | {r['loop_rate']:.0f} | {r['peak_mib']:.0f} MiB |")
    return 1 if ours_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
