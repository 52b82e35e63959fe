"""`coarchive concepts` and `coarchive archive`: the concept registry and per-concept archives."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from pipeline.core.logs import get_logger

log = get_logger(__name__)

REGISTRY_NAME = "concepts.yaml"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _registry_path(args: argparse.Namespace) -> Path:
    if args.registry:
        return Path(args.registry)
    if args.root:
        return Path(args.root) / REGISTRY_NAME
    raise ValueError("give --registry FILE or --root DIR (the registry is then ROOT/concepts.yaml)")


def cmd_concepts_add(args: argparse.Namespace) -> int:
    """Add a concept (with synonyms, prompts, a context flag) to the registry."""
    from archives.registry import Concept, add_concept, load_registry, save_registry

    path = _registry_path(args)
    concept = Concept(args.name, tuple(args.synonym), tuple(args.prompt), args.context)
    save_registry(path, add_concept(load_registry(path), concept))
    print(f"added {concept.name!r} to {path}")
    return 0


def cmd_concepts_list(args: argparse.Namespace) -> int:
    """List the registry's concepts as a table or JSON."""
    from archives.registry import load_registry

    concepts = load_registry(_registry_path(args))
    if args.json:
        print(json.dumps([c.to_dict() for c in concepts], indent=2))
        return 0
    print(f"{'name':<24} {'context':<7}  synonyms / prompts")
    for c in concepts:
        extra = ", ".join([*c.synonyms, *(f'"{p}"' for p in c.prompts)])
        print(f"{c.name:<24} {'yes' if c.context else '':<7}  {extra}")
    return 0


def cmd_concepts_remove(args: argparse.Namespace) -> int:
    """Remove a concept from the registry."""
    from archives.registry import load_registry, remove_concept, save_registry

    path = _registry_path(args)
    save_registry(path, remove_concept(load_registry(path), args.name))
    print(f"removed {args.name!r} from {path}")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    """Retrieve an archive per registry concept (one batched search), deduplicate, measure strength, write them."""
    from archives.registry import load_registry, select
    from archives.retrieve import build_archives, run_dir
    from pipeline.core.model_choice import model_of_index
    from pipeline.core.models import load_model
    from pipeline.core.text import default_template_set

    if not args.root:
        raise ValueError("give --root DIR (the data root holding index/ and embeddings/)")
    if args.k <= 0:
        raise ValueError(f"k must be positive, got {args.k}")
    registry = _registry_path(args)
    if not registry.is_file():
        raise FileNotFoundError(f"concept registry not found: {registry}; add concepts with 'coarchive concepts add'")
    concepts = select(load_registry(registry), _csv(args.concepts) if args.concepts else None)
    loaded = load_model(model_of_index(args.model, args.root, args.version, "archive"), device=args.device)
    template_set = args.templates or default_template_set(loaded.ref)
    run = args.run or dt.date.today().isoformat()
    results = build_archives(
        args.root,
        loaded,
        concepts,
        run,
        template_set,
        version=args.version,
        k=args.k,
        dedup_threshold=args.dedup_threshold,
        pool=args.pool,
        images=args.images,
        progress=not args.quiet,
        rerank=args.rerank,
    )
    print(f"{'concept':<20} {'items':>5} {'dups':>5} {'strength':>8} {'standouts':>9}  weak")
    for r in results:
        print(f"{r.concept:<20} {r.items:>5} {r.duplicates_removed:>5} {r.strength:>8.2f} {r.standouts:>9}  {r.weak}")
    for r in results:
        if r.short_reason:
            log.info(f"note: archive {r.concept!r} holds {r.short_reason}")
        if r.weak:
            log.warning(f"warning: archive {r.concept!r} is weak: {r.reason}")
    print(f"wrote {len(results)} archives to {run_dir(args.root, loaded.ref.model_id, run)}")
    return 0


def cmd_archive_diff(args: argparse.Namespace) -> int:
    """Compare two archive runs: items added, removed and kept per concept, mean rank change, strength."""
    from archives.diff import diff_runs, diff_table
    from archives.retrieve import run_dir
    from pipeline.core.model_choice import model_of_archives
    from pipeline.core.models import ModelRef

    if not args.root:
        raise ValueError("give --root DIR (the data root holding archives/)")
    model_id = ModelRef.parse(model_of_archives(args.model, args.root, args.run_a, "archive diff")).model_id
    diff = diff_runs(run_dir(args.root, model_id, args.run_a), run_dir(args.root, model_id, args.run_b))
    print(json.dumps(diff, indent=2) if args.json else diff_table(diff))
    return 0


def _add_registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", default=None, help="registry YAML file (default: ROOT/concepts.yaml)")
    parser.add_argument("--root", default=None, help="data root (the registry is then ROOT/concepts.yaml)")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this package's subcommands on the `coarchive` parser."""
    from pipeline.pool.index_plan import RERANK_HELP, rerank_count

    concepts = commands.add_parser(
        "concepts", help="the concept registry", description="Add, list and remove concepts in the registry YAML."
    )
    sub = concepts.add_subparsers(dest="concepts_command", required=True, metavar="CONCEPTS_COMMAND")
    add = sub.add_parser("add", help="add a concept", description=cmd_concepts_add.__doc__)
    add.add_argument("name", help="concept name (unique, case-insensitive)")
    add.add_argument("--synonym", action="append", default=[], help="another word for it (repeatable)")
    add.add_argument("--prompt", action="append", default=[], help="a full sentence used as it is (repeatable)")
    add.add_argument("--context", action="store_true", help="a context concept (co-segmented first, as in ReCo)")
    _add_registry_options(add)
    add.set_defaults(func=cmd_concepts_add)
    ls = sub.add_parser("list", help="list the concepts", description=cmd_concepts_list.__doc__)
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_registry_options(ls)
    ls.set_defaults(func=cmd_concepts_list)
    rm = sub.add_parser("remove", help="remove a concept", description=cmd_concepts_remove.__doc__)
    rm.add_argument("name", help="concept name (case-insensitive)")
    _add_registry_options(rm)
    rm.set_defaults(func=cmd_concepts_remove)

    archive = commands.add_parser(
        "archive",
        help="build per-concept archives (or 'archive diff' two runs)",
        description=cmd_archive.__doc__ + " 'coarchive archive diff RUN_A RUN_B' compares two runs.",
    )
    _add_registry_options(archive)
    archive.add_argument(
        "--model", default=None, help="the index's model (default: $COARCHIVE_MODEL, else the only one in ROOT/index/)"
    )
    archive.add_argument("--concepts", default=None, help="comma-separated subset (default: the whole registry)")
    archive.add_argument("--run", default=None, help="run partition (default: today's date)")
    archive.add_argument("--version", default="v1", help="index version folder")
    archive.add_argument("-k", "--k", type=int, default=50, help="items per archive")
    archive.add_argument(
        "--images", action=argparse.BooleanOptionalAction, default=True, help="copy the images into images.tar"
    )
    archive.add_argument("--pool", default=None, help="pool folder to copy images from (default: ROOT/pool)")
    archive.add_argument(
        "--dedup-threshold",
        type=float,
        default=None,
        help="cosine at which an item is a near-duplicate of a kept one (default: 0.999 for the toy model, which "
        "packs distinct images closer than real CLIPs do, 0.95 for others)",
    )
    archive.add_argument(
        "--templates", default=None, help="template set: reco, zegclip, car or toy (default: toy for the toy model)"
    )
    archive.add_argument("--device", default=None, help="torch device for the text encoder")
    archive.add_argument("--rerank", type=rerank_count, default=None, metavar="N", help=RERANK_HELP)
    archive.set_defaults(func=cmd_archive)
    archive_sub = archive.add_subparsers(dest="archive_command", required=False, metavar="{diff}")
    diff = archive_sub.add_parser("diff", help="compare two archive runs", description=cmd_archive_diff.__doc__)
    diff.add_argument("run_a", help="the earlier run, e.g. 2026-11-21")
    diff.add_argument("run_b", help="the later run")
    diff.add_argument("--root", default=argparse.SUPPRESS, help="data root holding archives/")
    diff.add_argument(
        "--model", default=argparse.SUPPRESS, help="the archives' model (default: the only one in ROOT/archives/)"
    )
    diff.add_argument("--json", action="store_true", help="print JSON instead of a table")
    diff.set_defaults(func=cmd_archive_diff)
