"""The `coarchive` command line: one subcommand per stage, each with --help."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from pipeline.core.logs import get_logger
from pipeline.toy.world import COLOURS, STUFF, THINGS

log = get_logger(__name__)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _add_world_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int, default=96, help="side of the square images in pixels")
    parser.add_argument("--stuff", type=_csv, default=STUFF, help="comma-separated background classes")
    parser.add_argument("--things", type=_csv, default=THINGS, help="comma-separated thing classes")
    parser.add_argument("--rare", type=_csv, default=("heart", "crescent"), help="comma-separated rare things")
    parser.add_argument("--rare-rate", type=float, default=0.005, help="fraction of images holding each rare thing")
    parser.add_argument("--colours", type=_csv, default=tuple(COLOURS), help="comma-separated colour names")
    parser.add_argument(
        "--context-rate", type=float, default=0.0, help="chance that a scene's things are natives of its background"
    )


def _world_spec(args: argparse.Namespace):
    from pipeline.toy.world import WorldSpec

    return WorldSpec(
        image_size=args.image_size,
        stuff=args.stuff,
        things=args.things,
        rare=args.rare,
        rare_rate=args.rare_rate,
        colours=args.colours,
        context_rate=args.context_rate,
    )


def cmd_toy_generate(args: argparse.Namespace) -> int:
    """Write a toy pool (img2dataset layout) and benchmark (images, masks, classes, split)."""
    from pipeline.toy.export import generate_toy_world

    summary = generate_toy_world(
        Path(args.out),
        _world_spec(args),
        seed=args.seed,
        pool_size=args.pool_size,
        shard_size=args.shard_size,
        bench_size=args.bench_size,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(
        f"wrote {summary['pool_size']} pool images in {summary['shards']} shards and "
        f"{summary['bench_size']} benchmark images under {args.out}"
    )
    return 0


def cmd_toy_train(args: argparse.Namespace) -> int:
    """Train the toy CLIP and write its compact fp16 weights: phase 1, a contrastive run on toy captions, then
    phase 2, the dense fine-tune that aligns MaskCLIP's value path from caption words (see `toy finetune-dense`).
    The defaults reproduce the bundled weights; --base starts phase 2 from an existing phase-1 file."""
    from pipeline.toy.dense_finetune import SHIPPED_DENSE_STAGES, build_toy_clip
    from pipeline.toy.train import TrainConfig

    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        train_images=args.train_images,
        lr=args.lr,
        seed=args.seed,
        save_every=args.save_every,
    )
    stages = () if args.no_dense else SHIPPED_DENSE_STAGES
    base = Path(args.base) if args.base else None
    if base is not None and args.no_dense:
        print("error: --base starts the dense phase, which --no-dense skips", file=sys.stderr)
        return 2
    path = build_toy_clip(config, stages, Path(args.out), base=base, progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def cmd_toy_finetune_dense(args: argparse.Namespace) -> int:
    """Fine-tune the toy CLIP's last visual blocks so that MaskCLIP's value path localises concepts, with tags read
    from caption words only (one stage of `toy train`'s phase 2)."""
    from pipeline.toy.dense_finetune import DenseFinetuneConfig, finetune_dense

    config = DenseFinetuneConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        train_images=args.train_images,
        lr=args.lr,
        blocks=args.blocks,
        topk=args.topk,
        absent_weight=args.absent_weight,
    )
    init = Path(args.init) if args.init else None
    print(f"wrote {finetune_dense(config, Path(args.out), init=init, progress=not args.quiet)}")
    return 0


def cmd_toy_eval(args: argparse.Namespace) -> int:
    """Measure a model's precision@k and dense mIoU on held-out toy scenes; print a table."""
    from pipeline.core.models import load_model
    from pipeline.toy.quality import measure_toy_quality
    from pipeline.toy.report_table import quality_table

    loaded = load_model(args.model, device=args.device)
    spec = _world_spec(args)
    quality = measure_toy_quality(
        loaded,
        spec,
        pool_size=args.pool_size,
        bench_size=args.bench_size,
        k=args.k,
        progress=not args.quiet,
        world_seed=args.world_seed,
    )
    print(quality_table(quality, spec))
    if args.json:
        Path(args.json).write_text(json.dumps(quality.__dict__, indent=2))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Download a URL list (parquet, csv, txt, ...) into an img2dataset pool; rerun to resume."""
    from pipeline.pool.ingest import ingest

    stats = ingest(
        args.urls,
        args.pool,
        input_format=args.input_format,
        url_col=args.url_col,
        caption_col=args.caption_col or None,
        image_size=args.image_size,
        shard_size=args.shard_size,
        processes=args.processes,
        threads=args.threads,
        timeout=args.timeout,
    )
    print(
        f"pool {args.pool}: {stats['successes']} of {stats['count']} images in {stats['shards']} shards, "
        f"{stats['failed_to_download']} failed to download, {stats['failed_to_resize']} failed to resize"
    )
    for reason, count in sorted(stats["reasons"].items(), key=lambda item: -item[1])[:10]:
        print(f"  {count:>7}  {reason}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Embed every unfinished shard of an img2dataset pool into DATA_ROOT/embeddings/MODEL_ID/."""
    from pipeline.core.openmp_policy import sleep_when_idle

    sleep_when_idle()  # before torch loads: its idle threads leave the cores to the decoders
    from pipeline.core.executors import make_executor, parse_resources
    from pipeline.core.manifest import record_stage
    from pipeline.core.model_choice import model_for_embed
    from pipeline.core.models import ModelRef
    from pipeline.core.stage import run_stage
    from pipeline.pool.embed import EmbedStage

    stage = EmbedStage(
        args.pool,
        args.root,
        ModelRef.parse(model_for_embed(args.model)),
        batch_size=args.batch_size,
        decode_threads=args.decode_threads,
        device=args.device,
        loader_workers=args.loader_workers,
        decode=args.decode,
        precision=args.precision,
    )
    if args.decode == "gpu" and args.device and not str(args.device).startswith("cuda"):
        raise ValueError(f"--decode gpu needs a CUDA device, got --device {args.device}")
    executor = make_executor(args.executor, args.scheduler, args.workers, parse_resources(args.resources))
    start = time.perf_counter()
    run = args.run or dt.date.today().isoformat()
    logs = None if "://" in str(args.root) else Path(args.root) / "runs" / run / "logs" / "embed"  # a file per shard
    try:
        report = run_stage(stage, executor, retries=args.retries, progress=not args.quiet, log_dir=logs)
    finally:
        executor.close()
    config = {"pool": args.pool, "model": str(stage.model), "batch_size": args.batch_size, "executor": args.executor}
    manifest = record_stage(args.root, run, report, config, time.perf_counter() - start)
    totals = report.totals()
    print(
        f"embedded {totals.get('embedded', 0)} of {totals.get('samples', 0)} samples in {len(report.done)} shards "
        f"into {stage.out_dir}; {len(report.skipped)} shards already done"
    )
    for name, count in sorted(totals.items()):
        if name.startswith("skipped: "):
            print(f"  {name}: {count}")
    for shard, error in sorted(report.failed.items()):
        log.warning(f"  shard {shard} failed: {error}")
    print(f"manifest: {manifest}")
    return 1 if report.failed else 0


DEFAULT_QUERY_CONCEPTS = (
    *THINGS,
    *STUFF,
    *COLOURS,
    "person",
    "dog",
    "cat",
    "car",
    "tree",
    "house",
    "boat",
    "bird",
    "horse",
    "flower",
    "road",
    "mountain",
    "chair",
    "table",
    "bicycle",
    "bottle",
    "train",
    "aeroplane",
    "sofa",
    "sheep",
)


def _text_queries(model, texts: list[str]):
    from pipeline.core.text import embed_words

    return embed_words(model, texts)  # (q, d) float32: the archive stage's text path


def cmd_index(args: argparse.Namespace) -> int:
    """Build a sharded FAISS index over a model's embeddings, tuned on text-query recall; write index.json."""
    from pipeline.app.index_options import build_options, text_device
    from pipeline.core.executors import make_executor
    from pipeline.core.io import parse_size
    from pipeline.core.model_choice import model_of_embeddings
    from pipeline.core.models import load_model
    from pipeline.pool.index import build_index
    from pipeline.pool.index_depth import describe_deep

    options = build_options(args)  # a clear error for --device cuda without a GPU, before anything loads
    model = load_model(model_of_embeddings(args.model, args.root, "index"), device=text_device(args.device))
    embeddings = Path(args.root) / "embeddings" / model.ref.model_id
    index_dir = Path(args.root) / "index" / model.ref.model_id / args.version
    concepts = _csv(Path(args.queries).read_text().replace("\n", ",")) if args.queries else DEFAULT_QUERY_CONCEPTS
    before = _indexed_shards(index_dir) if args.incremental else None
    executor = make_executor(args.executor, args.scheduler, args.workers)
    try:
        info = build_index(
            embeddings,
            index_dir,
            _text_queries(model, list(concepts)),
            executor,
            max_memory=parse_size(args.max_memory),
            target_recall=args.target_recall,
            incremental=args.incremental,
            progress=not args.quiet,
            options=options,
        )
    finally:
        executor.close()
    if args.incremental:
        print(_incremental_summary(before, info, index_dir))
    print(
        f"indexed {info['count']} vectors as {info['factory']} (nprobe {info['nprobe']}, {info['backend']}"
        f"{', rerank ' + str(info['rerank']) + ' x k' if info['rerank'] else ''}): "
        f"recall@10 {info['recall']['recall@10']:.3f}, recall@100 {info['recall']['recall@100']:.3f}"
        f"{describe_deep(info)} on {info['queries']} text queries"
    )
    return 0


def _indexed_shards(index_dir: Path) -> list[int] | None:
    """The shards an existing index covers, or None when there is no index yet."""
    path = index_dir / "index.json"
    return json.loads(path.read_text()).get("shards", []) if path.is_file() else None


def _incremental_summary(before: list[int] | None, info: dict, index_dir: Path) -> str:
    """One line saying what `index --incremental` did: built a first index, added shards, or retrained."""
    if before is None:
        return f"incremental: no index at {index_dir} yet; trained a new one"
    if info.get("retrained_because"):
        return f"incremental: retrained the index because {info['retrained_because']}"
    new = len(set(info["shards"]) - set(before))
    return f"incremental: added {new} new shard{'' if new == 1 else 's'} to the trained index"


def cmd_query(args: argparse.Namespace) -> int:
    """Search the index with text and/or image queries, all in one batched search; print a table or JSON."""
    import numpy as np

    from pipeline.core.model_choice import model_of_index
    from pipeline.core.models import load_model
    from pipeline.pool.query import image_queries, search, write_results_html

    if not args.text and not args.image:
        raise ValueError("give at least one text query or --image")
    model = load_model(model_of_index(args.model, args.root, args.version, "query"), device=args.device)
    index_dir = Path(args.root) / "index" / model.ref.model_id / args.version
    if not (index_dir / "index.json").is_file():
        raise FileNotFoundError(f"no index at {index_dir}; run 'coarchive index' first")
    parts = [_text_queries(model, args.text)] if args.text else []
    parts += [image_queries(model, args.image)] if args.image else []
    labels = [*args.text, *[f"image {p}" for p in args.image]]
    embeddings = Path(args.root) / "embeddings" / model.ref.model_id
    results = search(index_dir, embeddings, np.concatenate(parts), args.k, rerank=args.rerank)
    if args.html:
        page = write_results_html(Path(args.html), labels, results, Path(args.pool or Path(args.root) / "pool"))
        log.info(f"wrote {page}")
    if args.json:
        print(json.dumps({q: [h.__dict__ for h in hits] for q, hits in zip(labels, results, strict=True)}, indent=2))
        return 0
    for text, hits in zip(labels, results, strict=True):
        print(f"# {text}")
        print(f"{'rank':>4}  {'score':>6}  {'key':<12}  caption")
        for h in hits:
            print(f"{h.rank:>4}  {h.score:6.3f}  {h.key:<12}  {h.caption}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo on the embedded toy world and write an HTML report."""
    from pipeline.app.demo import run_demo

    report = run_demo(Path(args.out), pool_size=args.pool_size, seed=args.seed, progress=not args.quiet)
    print(f"demo report: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `coarchive` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="coarchive",
        description="Turn unlabelled image pools into named, "
        "segmentable concepts: embed, index, retrieve, co-segment, segment.",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", action="store_true", help="debug diagnostics, with times and module names")
    parser.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="where local copies of URL roots (s3://..., gs://...) live (default: $COARCHIVE_CACHE/roots, "
        "else ~/.cache/coarchive/roots)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    toy = commands.add_parser(
        "toy",
        help="the toy world and its tiny CLIP",
        description="The toy world: generate pools and benchmarks, train and evaluate the tiny CLIP.",
    )
    toy_commands = toy.add_subparsers(dest="toy_command", required=True, metavar="TOY_COMMAND")

    gen = toy_commands.add_parser(
        "generate", help="write a toy pool and benchmark", description=cmd_toy_generate.__doc__
    )
    gen.add_argument("--out", required=True, help="output folder (pool/, benchmark/, toy_truth/)")
    gen.add_argument("--pool-size", type=int, default=2000, help="number of unlabelled pool images")
    gen.add_argument("--shard-size", type=int, default=500, help="images per pool shard")
    gen.add_argument("--bench-size", type=int, default=100, help="number of labelled benchmark images")
    gen.add_argument("--seed", type=int, default=0, help="world seed: same seed and options, same bytes")
    gen.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    _add_world_options(gen)
    gen.set_defaults(func=cmd_toy_generate)

    train = toy_commands.add_parser("train", help="train the tiny CLIP", description=cmd_toy_train.__doc__)
    train.add_argument("--out", required=True, help="where to write the compact .safetensors weights")
    train.add_argument("--steps", type=int, default=1600, help="optimiser steps")
    train.add_argument("--batch-size", type=int, default=128, help="images per batch")
    train.add_argument("--train-images", type=int, default=40_000, help="distinct training scenes")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    train.add_argument("--seed", type=int, default=0, help="training seed")
    train.add_argument("--save-every", type=int, default=0, help="also save phase-1 weights every N steps")
    train.add_argument(
        "--base",
        default=None,
        help="skip phase 1 and fine-tune this phase-1 file (the contrastive run's output) instead",
    )
    train.add_argument(
        "--no-dense", action="store_true", help="phase 1 only: skip the dense fine-tune stages (phase 2)"
    )
    train.set_defaults(func=cmd_toy_train)

    dense = toy_commands.add_parser(
        "finetune-dense", help="align the tiny CLIP's value path", description=cmd_toy_finetune_dense.__doc__
    )
    dense.add_argument("--out", required=True, help="where to write the compact .safetensors weights")
    dense.add_argument("--init", default=None, help="compact weights to start from (default: the bundled ones)")
    dense.add_argument("--steps", type=int, default=800, help="optimiser steps")
    dense.add_argument("--batch-size", type=int, default=64, help="images per batch")
    dense.add_argument("--train-images", type=int, default=8000, help="distinct training scenes")
    dense.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    dense.add_argument("--blocks", type=int, default=1, help="visual blocks trained, counted from the last")
    dense.add_argument("--topk", type=int, default=8, help="patches pooled per concept by the tag loss")
    dense.add_argument(
        "--absent-weight",
        type=float,
        default=0.0,
        help="weight of the term that keeps every patch off the concepts its caption rules out",
    )
    dense.set_defaults(func=cmd_toy_finetune_dense)

    ev = toy_commands.add_parser("eval", help="measure a model on the toy world", description=cmd_toy_eval.__doc__)
    ev.add_argument("--model", default="toy", help="'toy', or an open_clip 'ARCH:TAG' / 'ARCH:/path/ckpt'")
    ev.add_argument("--pool-size", type=int, default=10_000, help="held-out pool images for precision@k")
    ev.add_argument("--bench-size", type=int, default=500, help="held-out labelled images for dense mIoU")
    ev.add_argument("--k", type=int, default=50, help="k of precision@k")
    ev.add_argument(
        "--world-seed",
        type=int,
        default=0,
        help="which held-out world to draw the pool and benchmark from (0: the README's protocol)",
    )
    ev.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    ev.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    _add_world_options(ev)
    ev.set_defaults(func=cmd_toy_eval)

    ingest = commands.add_parser("ingest", help="download URL lists into a pool", description=cmd_ingest.__doc__)
    ingest.add_argument("--urls", required=True, help="URL list file (or fsspec URL)")
    ingest.add_argument("--pool", required=True, help="output pool folder")
    ingest.add_argument("--input-format", default="parquet", help="txt, csv, tsv, parquet, json or jsonl")
    ingest.add_argument("--url-col", default="url", help="column holding the URLs")
    ingest.add_argument("--caption-col", default="caption", help="column holding captions ('' for none)")
    ingest.add_argument("--image-size", type=int, default=256, help="resize so the longer side fits this")
    ingest.add_argument("--shard-size", type=int, default=10_000, help="images per shard")
    ingest.add_argument("--processes", type=int, default=1, help="download processes")
    ingest.add_argument("--threads", type=int, default=32, help="download threads per process")
    ingest.add_argument("--timeout", type=int, default=10, help="seconds per download")
    ingest.set_defaults(func=cmd_ingest)

    embed = commands.add_parser("embed", help="embed pool shards with a CLIP", description=cmd_embed.__doc__)
    embed.add_argument("--pool", required=True, help="img2dataset output folder (local path or fsspec URL)")
    embed.add_argument("--root", required=True, help="data root (local path or fsspec URL)")
    embed.add_argument(
        "--model",
        default=None,
        help="open_clip 'ARCH:TAG' / 'ARCH:/path/ckpt', or 'toy' (default: $COARCHIVE_MODEL; one of the two is needed)",
    )
    embed.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    embed.add_argument(
        "--decode-threads", type=int, default=2, help="with --loader-workers 0: threads decoding and preprocessing"
    )
    embed.add_argument(
        "--loader-workers",
        type=int,
        default=0,
        help="processes reading, decoding and preprocessing shards while the model runs (0: --decode-threads "
        "threads in the embedding process; on a GPU machine, about its cores per GPU, up to 8)",
    )
    embed.add_argument(
        "--decode",
        default="auto",
        choices=["auto", "cpu", "gpu"],
        help="JPEG decode and resize on the GPU in batches (gpu), by PIL in the loader (cpu), gpu when on CUDA (auto)",
    )
    embed.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "fp16", "bf16"],
        help="autocast dtype of the forward pass (auto: fp16 on CUDA, fp32 on CPU; fp16 needs CUDA)",
    )
    embed.add_argument(
        "--executor",
        default="local",
        choices=["local", "dask", "dask-cuda"],
        help="in process, Dask, or dask-cuda's LocalCUDACluster (one worker per GPU)",
    )
    embed.add_argument(
        "--resources",
        default=None,
        help="Dask resources each shard's task holds, e.g. GPU=1: a worker started with "
        "`dask worker --resources GPU=1` runs one at a time (default with dask-cuda: GPU=1)",
    )
    embed.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    embed.add_argument("--workers", type=int, default=2, help="LocalCluster workers (with --executor dask)")
    embed.add_argument("--retries", type=int, default=2, help="retries of a failed shard")
    embed.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    embed.add_argument("--run", default=None, help="run partition for the manifest (default: today's date)")
    embed.set_defaults(func=cmd_embed)

    from pipeline.app.index_options import RERANK_HELP, rerank_count
    from pipeline.app.index_options import add_build_options as add_index_build_options

    index = commands.add_parser("index", help="build the FAISS index", description=cmd_index.__doc__)
    index.add_argument("--root", required=True, help="data root holding embeddings/MODEL_ID/")
    index.add_argument(
        "--model",
        default=None,
        help="the model whose embeddings to index (default: $COARCHIVE_MODEL, else the only one in ROOT/embeddings/)",
    )
    index.add_argument("--version", default="v1", help="index version folder")
    index.add_argument("--max-memory", default="2G", help="memory budget of the served index, e.g. 512M, 4G")
    index.add_argument(
        "--target-recall",
        type=float,
        default=0.95,
        help="recall@10 that nprobe is tuned to, and the deep nprobe's recall@1000 (archives)",
    )
    index.add_argument(
        "--incremental",
        action="store_true",
        help="add new shards to the trained index; retrain only if the drift check fails",
    )
    index.add_argument("--queries", default=None, help="file of concept names (one a line) for the recall report")
    index.add_argument("--executor", default="local", choices=["local", "dask"], help="in process, or Dask")
    index.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    index.add_argument("--workers", type=int, default=2, help="LocalCluster workers (with --executor dask)")
    add_index_build_options(index)
    index.set_defaults(func=cmd_index)

    query = commands.add_parser("query", help="search the index with text or images", description=cmd_query.__doc__)
    query.add_argument("text", nargs="*", help="text queries, e.g. 'heart' 'red circle'")
    query.add_argument("--image", action="append", default=[], help="an image file to search with (repeatable)")
    query.add_argument("--html", default=None, help="also write the results as an HTML grid of thumbnails")
    query.add_argument("--pool", default=None, help="pool folder for thumbnails (default: ROOT/pool)")
    query.add_argument("--root", required=True, help="data root")
    query.add_argument(
        "--model", default=None, help="the index's model (default: $COARCHIVE_MODEL, else the only one in ROOT/index/)"
    )
    query.add_argument("--version", default="v1", help="index version folder")
    query.add_argument("-k", "--k", type=int, default=10, help="results per query")
    query.add_argument("--json", action="store_true", help="print JSON instead of a table")
    query.add_argument("--device", default=None, help="torch device")
    query.add_argument("--rerank", type=rerank_count, default=None, metavar="N", help=RERANK_HELP)
    query.set_defaults(func=cmd_query)

    demo = commands.add_parser("demo", help="run the demo on the toy world", description=cmd_demo.__doc__)
    demo.add_argument("--out", default="demo_out", help="output folder (data and report.html)")
    demo.add_argument("--pool-size", type=int, default=3000, help="pool images to generate")
    demo.add_argument("--seed", type=int, default=0, help="world seed")
    demo.set_defaults(func=cmd_demo)

    from archives.commands import add_commands as add_archive_commands
    from pipeline.app.nightly.commands import add_commands as add_run_commands
    from pipeline.app.serve.commands import add_commands as add_serve_commands
    from segment.commands import add_commands as add_segment_commands

    add_archive_commands(commands)
    add_segment_commands(commands, vocabularies={"toy": (*STUFF, *THINGS)})  # the words the toy CLIP knows
    add_run_commands(commands)
    add_serve_commands(commands)
    _accept_everywhere(parser, ("--quiet", "--verbose", "--cache-dir"))
    return parser


def _accept_everywhere(parser: argparse.ArgumentParser, flags: tuple[str, ...]) -> None:
    """Let every subcommand take the global `flags` after its name too (`coarchive index --quiet ...`)."""
    globals_ = {f: a for a in parser._actions for f in a.option_strings if f in flags}
    stack = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    while stack:
        for sub in stack.pop().choices.values():
            have = {f for a in sub._actions for f in a.option_strings}
            for flag in flags:
                if flag not in have:
                    given = globals_[flag]
                    if isinstance(given, argparse._StoreTrueAction):
                        sub.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=given.help)
                    else:
                        sub.add_argument(flag, default=argparse.SUPPRESS, metavar=given.metavar, help=given.help)
            stack += [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse arguments, run the subcommand, turn bad input into a one-line error and exit 2."""
    from pipeline.app.url_roots import LocalCopies, command_of, url_dests
    from pipeline.core.blas_policy import name_blas_kernel
    from pipeline.core.local_paths import check_local_options
    from pipeline.core.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    name_blas_kernel()  # before faiss loads: its bundled OpenBLAS may not recognise the CPU
    copies = LocalCopies(Path(args.cache_dir).expanduser() if args.cache_dir else None)
    try:
        command = command_of(args)
        check_local_options(args, command, url_dests(command))  # before anything is written
        with copies.of(args):  # a URL root: pull what the command reads, run on the local copy, push what it wrote
            return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:
        print(f"coarchive: error: {copies.shown(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coarchive: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141


if __name__ == "__main__":
    sys.exit(main())
