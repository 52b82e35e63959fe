"""`coarchive car` subcommands: `car trace` prints CaR's query set per iteration for one image."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def cmd_trace(args: argparse.Namespace) -> int:
    """Run CaR on one image and print each iteration's queries, their scores and those kept, then the label areas."""
    import numpy as np
    from PIL import Image

    from pipeline.core.models import ModelRef, load_model
    from segment.car.segmenter import CaRSegmenter
    from segment.car.settings import BACKGROUND_CONCEPT

    try:
        with Image.open(args.image) as picture:
            image = np.asarray(picture.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {args.image}") from None
    except OSError as error:
        raise ValueError(f"cannot read image {args.image}: {error}") from None
    options = {}
    for name in ("mask_threshold", "confidence_threshold", "box_threshold", "max_iterations"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.prompts:
        options["prompts"] = args.prompts
    known = getattr(args, "vocabularies", {}).get(ModelRef.parse(args.model).name)  # the words this CLIP knows
    if not (args.concepts or known or args.bank):
        raise ValueError(f"give --concepts: model {args.model!r} declares no vocabulary and there is no --bank")
    if known and args.bank is None:  # a bank declares its own concepts
        options["vocabulary"] = [*known, BACKGROUND_CONCEPT]
    loaded = load_model(args.model, device=args.device)
    segmenter = CaRSegmenter(loaded, bank=args.bank, crf=args.crf, device=args.device, preset=args.preset, **options)
    if args.concepts:
        concepts = _csv(args.concepts)
    else:  # the model's vocabulary, else the bank's concepts
        concepts = list(known or segmenter.evidence.bank.concepts)
    out, result = segmenter.segment(image, concepts)
    _, queries, _ = segmenter.check(concepts)
    if result is not None:
        for i, step in enumerate(result.steps, 1):
            scored = ", ".join(f"{queries[q]} {s:.3f}" for q, s in zip(step.queries, step.scores, strict=True))
            print(f"iteration {i}: {len(step.queries)} queries [{scored}] -> kept {[queries[q] for q in step.kept]}")
        print(f"stopped: {result.stopped}; final set {[queries[q] for q in result.queries]}")
    areas = np.bincount(out.labels.ravel(), minlength=len(concepts)) / out.labels.size
    print("label areas: " + ", ".join(f"{c} {a:.2f}" for c, a in zip(concepts, areas, strict=True) if a > 0))
    return 0


def add_commands(commands: argparse._SubParsersAction, vocabularies: Mapping[str, Sequence[str]] | None = None) -> None:
    """Register this package's subcommands on the `coarchive` parser; `vocabularies` maps a model name to the concepts
    that CLIP knows (the application gives the toy CLIP's: the toy world's classes)."""
    car = commands.add_parser("car", help="CaR (CLIP as RNN) tools", description=__doc__)
    sub = car.add_subparsers(dest="car_command", required=True)
    trace = sub.add_parser(
        "trace", help="print CaR's query set per iteration for one image", description=cmd_trace.__doc__
    )
    trace.add_argument("image", help="an image file")
    trace.add_argument(
        "--concepts",
        default=None,
        help="comma-separated concepts (default: the words the model knows, as the toy CLIP's, else the bank's)",
    )
    trace.add_argument("--model", default="toy", help="open_clip model reference (default: the toy CLIP)")
    trace.add_argument("--bank", default=None, help="segment bank folder: add bank evidence to the classifier")
    trace.add_argument("--preset", default=None, help="voc, coco-object, context, ade20k or toy")
    trace.add_argument("--mask-threshold", type=float, default=None)
    trace.add_argument("--confidence-threshold", type=float, default=None)
    trace.add_argument("--box-threshold", type=float, default=None)
    trace.add_argument("--max-iterations", type=int, default=None)
    trace.add_argument("--prompts", default=None, help="visual prompts joined by '+', e.g. circle+blur")
    trace.add_argument("--crf", action="store_true", help="dense CRF post-processing")
    trace.add_argument("--device", default="cpu")
    known = {name: tuple(words) for name, words in (vocabularies or {}).items()}
    trace.set_defaults(func=cmd_trace, vocabularies=known)
