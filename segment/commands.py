"""`coarchive cosegment`, `coarchive bank` and `coarchive eval`: co-segment archives into segment banks, show and
import banks, measure segmenters on benchmarks."""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def cmd_cosegment(args: argparse.Namespace) -> int:
    """Co-segment every concept archive of a run into a segment bank (ReCo: LGC and context elimination)."""
    from pipeline.core.model_choice import model_of_archives
    from pipeline.core.models import load_model
    from segment.bank_from_archives import bank_from_run

    start = time.perf_counter()
    loaded = load_model(model_of_archives(args.model, args.root, args.run, "cosegment"), device=args.device)
    bank, images = bank_from_run(
        loaded,
        Path(args.root) / "archives" / loaded.ref.model_id / args.run,
        pool=Path(args.pool) if args.pool else Path(args.root) / "pool",
        encoder=args.encoder,
        encoder_checkpoint=args.encoder_checkpoint,
        lgc=not args.no_lgc,
        ce=not args.no_ce,
        concepts=_csv(args.concepts) if args.concepts else None,
        k=args.k,
        seed_rule=args.seed_rule,
        progress=not args.quiet,
    )
    model_id = loaded.ref.model_id
    out = Path(args.out) if args.out else Path(args.root) / "banks" / model_id / args.run
    bank.save(out)
    context = bank.params["context"]
    print(
        f"wrote a bank of {len(bank.concepts)} concepts ({images} images, "
        f"encoder {bank.encoder}, dim {bank.dim}, LGC {'on' if bank.params['lgc'] else 'off'}, "
        f"CE {'on' if bank.params['ce'] else 'off'} with {len(context)} context concepts) "
        f"to {out} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def cmd_bank_show(args: argparse.Namespace) -> int:
    """Print a segment bank's concepts, dims, encoder, parameters and images used."""
    from segment.bank import SegmentBank

    bank = SegmentBank.load(args.dir)
    text_dim = "-" if bank.text_embeddings is None else bank.text_embeddings.shape[1]
    print(f"bank {args.dir}: {len(bank.concepts)} concepts, dim {bank.dim}, text dim {text_dim}")
    print(f"encoder {bank.encoder}, method {bank.method}")
    if bank.params:
        print("params " + ", ".join(f"{k}={v}" for k, v in bank.params.items() if k != "build_order"))
    context = set(bank.params.get("context", []))
    per = bank.provenance.get("concepts", {})
    width = max(len("concept"), *(len(c) for c in bank.concepts))
    print(f"{'concept':<{width}}  {'context':>7}  {'images':>6}  archive")
    for c in bank.concepts:
        info = per.get(c, {})
        images = info.get("images", "-")
        print(f"{c:<{width}}  {'yes' if c in context else 'no':>7}  {images:>6}  {info.get('archive') or '-'}")
    return 0


def cmd_bank_import_reco(args: argparse.Namespace) -> int:
    """Import ReCo's official reference-embedding pickle as a segment bank."""
    from segment.reco_import import import_reco_pickle

    bank = import_reco_pickle(args.pickle, encoder=args.encoder)
    bank.save(args.out)
    print(f"imported {len(bank.concepts)} concepts of dim {bank.dim} (encoder {bank.encoder}) into {args.out}")
    return 0


DATASET_KINDS_HELP = "toy, voc, voc20, context, context59, coco-stuff, coco-stuff27, coco-object, cityscapes, ade20k"


def _accepted(factory: Callable) -> tuple[set[str], set[str], bool]:
    """(parameter names, required parameter names, takes **kwargs) of a segmenter factory or function."""
    params = inspect.signature(factory).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    required = {p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, required, any(p.kind == p.VAR_KEYWORD for p in params)


def _segmenter_options(factory: Callable, name: str, args: argparse.Namespace) -> dict:
    """Keyword arguments for segmenter `name` from the options given (a required CLIP defaults to the toy model);
    ValueError for an option given that it does not take, or a parameter it needs that no option gives."""
    names, required, var_kw = _accepted(factory)
    option_of = {
        "bank": "--bank",
        "checkpoint": "--checkpoint",
        "clip": "--model",
        "saliency": "--no-saliency",
        "crf": "--crf",
        "device": "--device",
    }
    values = {
        "bank": Path(args.bank) if args.bank is not None else None,
        "checkpoint": Path(args.checkpoint) if args.checkpoint is not None else None,
        "clip": args.model if args.model is not None else ("toy" if "clip" in required else None),
        "saliency": False if args.no_saliency else None,
        "crf": True if args.crf else None,
        "device": args.device,
    }
    kwargs = {}
    for param, value in values.items():
        if value is None:
            continue
        if param not in names and not var_kw:
            raise ValueError(f"segmenter {name!r} takes no {option_of[param]}")
        kwargs[param] = value
    missing = sorted(required - set(kwargs))
    if missing:
        raise ValueError(f"segmenter {name!r} needs {', '.join(option_of.get(m, m) for m in missing)}")
    if "clip" in kwargs:
        from pipeline.core.models import load_model

        kwargs["clip"] = load_model(kwargs["clip"], device=args.device)
    return kwargs


def _run_ablation(which: str, dataset, args: argparse.Namespace, out: Path) -> int:
    """`--ablation reco`: ReCo's inference components (saliency, CRF) on one bank over the benchmark."""
    from segment.reco_ablation import run_ablation

    if which != "reco":
        raise ValueError(f"unknown ablation {which!r}; available: reco")
    table = run_ablation(
        dataset,
        Path(args.bank) if args.bank else None,
        model=args.model or "toy",
        limit=args.limit,
        batch_size=args.batch_size,
        out=out,
        device=args.device,
        progress=not args.quiet,
    )
    print(table)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Measure a segmenter on a labelled benchmark: per-class IoU, mIoU and pixel accuracy, a JSON file and an
    HTML report with the confusion matrix and prediction overlays."""
    from segment import segmenter as registry
    from segment.datasets import open_dataset
    from segment.eval_report import write_eval_report
    from segment.evaluate import evaluate

    dataset = open_dataset(args.dataset, args.data_root, split=args.split)
    if len(dataset) == 0:
        raise ValueError(f"no samples in {args.dataset} split {args.split!r} under {args.data_root}")
    out = Path(args.out) if args.out else Path("eval_out") / f"{args.dataset}-{args.split}-{args.segmenter}"
    if args.ablation:
        return _run_ablation(args.ablation, dataset, args, out)
    factory = registry.segmenter_factory(args.segmenter)  # read for the options it takes
    segmenter = registry.create_segmenter(args.segmenter, **_segmenter_options(factory, args.segmenter, args))
    protocol = None
    if args.protocol or args.size is not None or args.stride is not None:  # override parts of the segmenter's own
        own = segmenter.protocol
        protocol = registry.Protocol(
            args.protocol or own.mode,
            own.size if args.size is None else args.size,
            own.stride if args.stride is None else args.stride,
        )
    concepts = _csv(args.concepts) if args.concepts else None
    result = evaluate(
        segmenter,
        dataset,
        concepts=concepts,
        protocol=protocol,
        limit=args.limit,
        batch_size=args.batch_size,
        keep=args.keep,
        progress=not args.quiet,
    )
    json_path, html_path = write_eval_report(result, out)
    print(result.table())
    print(f"wrote {json_path} and {html_path}")
    return 0


def add_commands(commands: argparse._SubParsersAction, vocabularies: dict[str, tuple[str, ...]] | None = None) -> None:
    """Register this package's subcommands on the `coarchive` parser; `vocabularies`: model name -> the concepts that
    CLIP knows (the application gives the toy CLIP's)."""
    from segment.car.commands import add_commands as add_car_commands
    from segment.reco_plus_commands import add_commands as add_reco_plus_commands
    from segment.zegclip.commands import add_commands as add_zegclip_commands

    add_reco_plus_commands(commands)
    add_zegclip_commands(commands)
    add_car_commands(commands, vocabularies)
    co = commands.add_parser(
        "cosegment", help="co-segment archives into a segment bank", description=cmd_cosegment.__doc__
    )
    co.add_argument("--root", required=True, help="data root holding archives/MODEL_ID/RUN/")
    co.add_argument(
        "--model",
        default=None,
        help="the CLIP the archives were retrieved with (default: $COARCHIVE_MODEL, else the run's only one)",
    )
    co.add_argument("--run", required=True, help="archive run partition to read")
    co.add_argument(
        "--encoder",
        default="clip-penultimate",  # bank_from_archives.DEFAULT_ENCODER, without importing torch here
        help="dense features to co-segment: clip-penultimate (the CLIP image tower's own patch tokens; best on the "
        "toy world, see README), clip (MaskCLIP value path), clip-tokens, or timm:NAME (e.g. a DINO ViT)",
    )
    co.add_argument("--encoder-checkpoint", default=None, help="local weights for a timm encoder (never downloaded)")
    co.add_argument("--no-lgc", action="store_true", help="no language-guided co-segmentation")
    co.add_argument("--no-ce", action="store_true", help="no context elimination")
    co.add_argument("--concepts", default=None, help="comma-separated concepts (default: every archive of the run)")
    co.add_argument("--k", type=int, default=None, help="use only the top k images of each archive")
    co.add_argument(
        "--seed-rule",
        default="paper",
        choices=["paper", "official"],
        help="paper: a pixel's seed score averages its best match in every other archive image; official: as "
        "NoelShin/reco computes it (own image included, images j..2j), for identical banks",
    )
    co.add_argument("--pool", default=None, help="pool folder for archives without images.tar (default ROOT/pool)")
    co.add_argument("--out", default=None, help="bank folder (default ROOT/banks/MODEL_ID/RUN)")
    co.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    co.set_defaults(func=cmd_cosegment)

    bank = commands.add_parser("bank", help="inspect and import segment banks", description="Segment banks.")
    bank_commands = bank.add_subparsers(dest="bank_command", required=True, metavar="BANK_COMMAND")
    show = bank_commands.add_parser("show", help="print a bank's contents", description=cmd_bank_show.__doc__)
    show.add_argument("dir", help="bank folder (bank.safetensors + bank.json)")
    show.set_defaults(func=cmd_bank_show)
    imp = bank_commands.add_parser(
        "import-reco", help="import ReCo's official reference pickle", description=cmd_bank_import_reco.__doc__
    )
    imp.add_argument("pickle", help="ReCo's {category: tensor} pickle")
    imp.add_argument("--out", required=True, help="bank folder to write")
    imp.add_argument("--encoder", default="reco-official", help="name of the dense encoder the references came from")
    imp.set_defaults(func=cmd_bank_import_reco)

    ev = commands.add_parser("eval", help="measure a segmenter on a labelled benchmark", description=cmd_eval.__doc__)
    ev.add_argument("--dataset", required=True, metavar="KIND", help=f"benchmark kind: {DATASET_KINDS_HELP}")
    ev.add_argument("--data-root", required=True, help="folder holding the benchmark in its usual layout")
    ev.add_argument("--split", default="val", help="split to evaluate (default val)")
    ev.add_argument("--segmenter", default="reco", help="registered segmenter name (default reco)")
    ev.add_argument("--bank", default=None, help="segment bank folder (bank.safetensors + bank.json) for reco")
    ev.add_argument("--checkpoint", default=None, help="a trained segmenter's checkpoint folder (reco-plus)")
    ev.add_argument("--model", default=None, help="CLIP for text and saliency (default: the bank's own, else toy)")
    ev.add_argument("--crf", action="store_true", help="refine labels with the dense CRF")
    ev.add_argument("--no-saliency", action="store_true", help="no DenseCLIP saliency (reco)")
    ev.add_argument("--concepts", default=None, help="comma-separated names to segment, one per class, in order")
    ev.add_argument("--protocol", choices=["whole", "resize", "slide"], default=None, help="override the protocol")
    ev.add_argument("--size", type=int, default=None, help="short side (resize) or window (slide) in pixels")
    ev.add_argument("--stride", type=int, default=None, help="window stride in pixels (slide)")
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    ev.add_argument("--batch-size", type=int, default=8, help="images (or windows) per predict_batch call")
    ev.add_argument("--keep", type=int, default=4, help="prediction overlays in the report")
    ev.add_argument("--out", default=None, help="output folder (default eval_out/KIND-SPLIT-SEGMENTER)")
    ev.add_argument("--device", default=None, help="torch device (default: the segmenter's choice)")
    ev.add_argument("--ablation", default=None, metavar="NAME", help="run an ablation instead (reco)")
    ev.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar")
    ev.set_defaults(func=cmd_eval)
