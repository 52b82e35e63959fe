"""The `coarchive` command line: one subcommand per stage, each with --help."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.toy.world import COLOURS, STUFF, THINGS


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _add_world_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int, default=96, help="side of the square images in pixels")
    parser.add_argument("--stuff", type=_csv, default=STUFF, help="comma-separated background classes")
    parser.add_argument("--things", type=_csv, default=THINGS, help="comma-separated thing classes")
    parser.add_argument("--rare", type=_csv, default=("heart", "crescent"), help="comma-separated rare things")
    parser.add_argument("--rare-rate", type=float, default=0.005, help="fraction of images holding each rare thing")
    parser.add_argument("--colours", type=_csv, default=tuple(COLOURS), help="comma-separated colour names")


def _world_spec(args: argparse.Namespace):
    from pipeline.toy.world import WorldSpec

    return WorldSpec(
        image_size=args.image_size,
        stuff=args.stuff,
        things=args.things,
        rare=args.rare,
        rare_rate=args.rare_rate,
        colours=args.colours,
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
    """Train the toy CLIP and write its compact fp16 weights."""
    from pipeline.toy.train import TrainConfig, train_toy_clip

    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        train_images=args.train_images,
        lr=args.lr,
        seed=args.seed,
        save_every=args.save_every,
    )
    path = train_toy_clip(config, Path(args.out), progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def cmd_toy_eval(args: argparse.Namespace) -> int:
    """Measure a model's precision@k and dense mIoU on held-out toy scenes; print a table."""
    from pipeline.models import load_model
    from pipeline.toy.quality import measure_toy_quality
    from pipeline.toy.report_table import quality_table

    loaded = load_model(args.model, device=args.device)
    spec = _world_spec(args)
    quality = measure_toy_quality(
        loaded, spec, pool_size=args.pool_size, bench_size=args.bench_size, k=args.k, progress=not args.quiet
    )
    print(quality_table(quality, spec))
    if args.json:
        Path(args.json).write_text(json.dumps(quality.__dict__, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo on the embedded toy world and write an HTML report."""
    from pipeline.demo import run_demo

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
    train.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    train.add_argument("--batch-size", type=int, default=128, help="images per batch")
    train.add_argument("--train-images", type=int, default=40_000, help="distinct training scenes")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    train.add_argument("--seed", type=int, default=0, help="training seed")
    train.add_argument("--save-every", type=int, default=0, help="also save weights every N steps")
    train.set_defaults(func=cmd_toy_train)

    ev = toy_commands.add_parser("eval", help="measure a model on the toy world", description=cmd_toy_eval.__doc__)
    ev.add_argument("--model", default="toy", help="'toy', or an open_clip 'ARCH:TAG' / 'ARCH:/path/ckpt'")
    ev.add_argument("--pool-size", type=int, default=10_000, help="held-out pool images for precision@k")
    ev.add_argument("--bench-size", type=int, default=500, help="held-out labelled images for dense mIoU")
    ev.add_argument("--k", type=int, default=50, help="k of precision@k")
    ev.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    ev.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    _add_world_options(ev)
    ev.set_defaults(func=cmd_toy_eval)

    demo = commands.add_parser("demo", help="run the demo on the toy world", description=cmd_demo.__doc__)
    demo.add_argument("--out", default="demo_out", help="output folder (data and report.html)")
    demo.add_argument("--pool-size", type=int, default=3000, help="pool images to generate")
    demo.add_argument("--seed", type=int, default=0, help="world seed")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse arguments, run the subcommand, turn bad input into a one-line error and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:
        print(f"coarchive: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coarchive: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
