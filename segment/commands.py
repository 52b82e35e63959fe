"""`coarchive cosegment` and `coarchive bank`: co-segment archives into segment banks, show and import banks."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def cmd_cosegment(args: argparse.Namespace) -> int:
    """Co-segment every concept archive of a run into a segment bank (ReCo: LGC and context elimination)."""
    import torch

    from pipeline.models import load_model
    from segment.bank_from_archives import bank_from_run

    start = time.perf_counter()
    loaded = load_model(args.model, device=args.device)
    torch.set_grad_enabled(False)
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


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this package's subcommands on the `coarchive` parser."""
    co = commands.add_parser(
        "cosegment", help="co-segment archives into a segment bank", description=cmd_cosegment.__doc__
    )
    co.add_argument("--root", required=True, help="data root holding archives/MODEL_ID/RUN/")
    co.add_argument("--model", default="toy", help="the CLIP the archives were retrieved with (text, LGC, 'clip')")
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
