"""`coarchive cosegment` and `coarchive bank`: co-segment archives into segment banks, show and import banks."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def prompt_embedding(loaded, concept: str, prompts: list[str] | None):
    """A concept's text embedding (d,) float32: the mean of its normalised prompt embeddings, renormalised.

    Prompts holding '{}' are templates filled with the concept; without prompts, the toy templates are used.
    """
    import torch
    import torch.nn.functional as F

    from pipeline.toy.quality import text_embeddings

    if not prompts:
        return text_embeddings(loaded, [concept])[0]
    texts = [p.format(concept) if "{}" in p else p for p in prompts]
    with torch.no_grad():
        emb = loaded.model.encode_text(loaded.tokenizer(texts).to(loaded.device)).float()
    return F.normalize(F.normalize(emb, dim=-1).mean(0), dim=0).cpu()


def archive_text_embedding(loaded, query: dict):
    """The text embedding (d,) the archive was retrieved with, rebuilt from its query.json.

    With a template set ('templates', as the archive builder writes): every term (name, synonyms) in every template
    plus the concept's own prompts, exactly as retrieval embedded them; otherwise `prompt_embedding` of its prompts.
    """
    import torch

    if query.get("templates"):
        from archives.prompts import concept_embeddings
        from archives.registry import Concept

        concept = Concept(str(query["concept"]), tuple(query.get("synonyms") or ()), tuple(query.get("prompts") or ()))
        return torch.from_numpy(concept_embeddings(loaded, [concept], str(query["templates"]))[0])
    return prompt_embedding(loaded, str(query["concept"]), query.get("prompts"))


def cmd_cosegment(args: argparse.Namespace) -> int:
    """Co-segment every concept archive of a run into a segment bank (ReCo: LGC and context elimination)."""
    import torch

    from archives.archive import archive_images, list_archives
    from pipeline.models import load_model
    from segment.cosegment import ConceptImages, build_bank
    from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder

    start = time.perf_counter()
    if args.k is not None and args.k < 2:
        raise ValueError(f"--k must be at least 2, got {args.k}")
    loaded = load_model(args.model, device=args.device)
    model_id = loaded.ref.model_id
    run_dir = Path(args.root) / "archives" / model_id / args.run
    archives = list_archives(run_dir)
    if args.concepts:
        known = {a.concept: a for a in archives}
        missing = [c for c in _csv(args.concepts) if c not in known]
        if missing:
            raise ValueError(f"no archive for {', '.join(missing)} in {run_dir}; have {', '.join(known)}")
        archives = [known[c] for c in _csv(args.concepts)]
    pool = Path(args.pool) if args.pool else Path(args.root) / "pool"
    inputs = []
    for archive in archives:
        ids, images = archive_images(archive, pool)
        if args.k is not None:
            ids, images = ids[: args.k], images[: args.k]
        text = archive_text_embedding(loaded, archive.query)
        inputs.append(ConceptImages(archive.concept, images, text, archive.context, ids, str(archive.path)))
    extra = {"device": loaded.device} if args.encoder.startswith("timm:") else {}
    encoder = create_dense_encoder(args.encoder, clip=loaded, checkpoint=args.encoder_checkpoint, **extra)
    saliency = encoder if isinstance(encoder, ClipDenseEncoder) and encoder.path == "value" else None
    if not args.no_lgc and saliency is None:
        saliency = ClipDenseEncoder(loaded)
    torch.set_grad_enabled(False)
    provenance = {"model": str(loaded.ref), "model_id": model_id, "run": args.run, "archives": str(run_dir)}
    bank = build_bank(
        inputs,
        encoder,
        saliency,
        lgc=not args.no_lgc,
        ce=not args.no_ce,
        progress=not args.quiet,
        provenance=provenance,
    )
    out = Path(args.out) if args.out else Path(args.root) / "banks" / model_id / args.run
    bank.save(out)
    context = bank.params["context"]
    print(
        f"wrote a bank of {len(bank.concepts)} concepts ({sum(len(i.images) for i in inputs)} images, "
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
    co.add_argument("--encoder", default="clip", help="clip (MaskCLIP), clip-tokens, clip-penultimate, timm:NAME")
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
