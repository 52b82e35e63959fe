"""`coarchive zegclip train` and `coarchive zegclip import-official`: train ZegCLIP on any benchmark the evaluation
harness reads (inductive, transductive, bank-fed), or import an official checkpoint."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict


def _csv(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def read_dataset(kind: str, root: str, split: str, limit: int | None):
    """(images, masks, classes) of a benchmark the evaluation harness reads; corrupt samples skipped."""
    from segment.datasets import open_dataset
    from segment.datasets.base import CorruptSampleError

    dataset = open_dataset(kind, root, split)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    images, masks = [], []
    for i in range(count):
        try:
            sample = dataset[i]
        except CorruptSampleError:
            continue
        images.append(sample.image)
        masks.append(sample.mask)
    if not images:
        raise ValueError(f"no readable samples in {kind} {split} under {root}")
    return images, masks, list(dataset.classes)


def cmd_train(args: argparse.Namespace) -> int:
    """Train ZegCLIP on a benchmark's seen classes (inductive), or continue a checkpoint transductively
    (--transductive-from: pseudo-labels for the unseen classes); optionally fed by a segment bank."""
    import torch

    from pipeline.core.models import load_model
    from segment.bank import SegmentBank
    from segment.zegclip.checkpoint import read_meta
    from segment.zegclip.data import TrainingSet, check_split, split_masks
    from segment.zegclip.model import ModelConfig, ZegCLIP
    from segment.zegclip.train import TrainConfig, train_zegclip
    from segment.zegclip.vocabulary import TEMPLATES, Vocabulary, bank_references, embed_texts

    if args.threads:
        torch.set_num_threads(args.threads)
    unseen = _csv(args.unseen)
    images, masks, classes = read_dataset(args.dataset, args.data_root, args.split, args.limit)
    seen = check_split(classes, unseen)
    if args.transductive_from:
        read_meta(args.transductive_from)
    loaded = load_model(args.model, device=args.device)
    templates = tuple(_csv(args.templates)) if args.templates else TEMPLATES
    bank = SegmentBank.load(args.bank) if args.bank else None
    vocab = Vocabulary(classes, embed_texts(loaded, classes, templates))
    if bank is not None:
        vocab = vocab.extended(loaded, bank.concepts, templates)
        refs = bank_references(bank) if args.bank_fusion > 0 else {}
        vocab = Vocabulary(vocab.concepts, vocab.text, refs, args.bank_fusion)
    data = TrainingSet(images, split_masks(masks, classes, unseen), seen)
    pseudo: list[str] = []
    if args.transductive_from:
        data = TrainingSet(data.images, data.labels, seen + unseen)  # same indices; unseen classes join the queries
        pseudo = unseen
    if args.archives:
        if bank is None:
            raise ValueError("--archives needs --bank (its ReCo pseudo-masks label the archive images)")
        from segment.reco import ReCoSegmenter
        from segment.zegclip.bank_feed import archive_training_set, read_run_archives

        fed = _csv(args.bank_concepts) or [c for c in bank.concepts if c not in seen]
        reco = ReCoSegmenter(bank, clip=loaded, saliency=False, crf=args.crf, device=args.device)
        archives = read_run_archives(args.archives, fed, args.pool, args.k)
        data = data + archive_training_set(reco, archives, bank.concepts, args.crop_size)
        print(f"bank-fed: {sum(len(v) for v in archives.values())} archive images of {', '.join(fed)}")
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=min(args.warmup, args.steps),
        crop_size=args.crop_size,
        seed=args.seed,
        save_every=args.save_every,
        photometric=not args.no_photometric,
        drop_path=args.drop_path,
    )
    model = ZegCLIP(loaded.model.visual, ModelConfig(num_tokens=args.prompts))
    start = time.perf_counter()
    train_zegclip(
        model,
        data,
        vocab,
        config,
        str(loaded.ref),
        pseudo_classes=pseudo,
        out=args.out,
        resume=args.resume,
        init=args.transductive_from,
        max_steps=args.max_steps,
        progress=not args.quiet,
        device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
        extra={"dataset": args.dataset, "split": args.split, "seen": seen, "unseen": unseen, "train": asdict(config)},
    )
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s "
          f"(evaluate with: coarchive eval --segmenter zegclip --checkpoint {args.out} ...)")  # fmt: skip
    return 0


def cmd_import_official(args: argparse.Namespace) -> int:
    """Convert an official ZegCLIP checkpoint (mmseg .pth) into a coarchive checkpoint folder."""
    from segment.zegclip.official import import_official

    folder = import_official(
        args.checkpoint,
        args.out,
        classes=_csv(args.classes),
        seen=_csv(args.seen) or None,
        model=args.model,
        num_tokens=args.prompts,
    )
    print(f"wrote {folder} (evaluate with: coarchive eval --segmenter zegclip --checkpoint {folder} ...)")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this package's subcommands on the `coarchive` parser."""
    from segment.datasets import DATASET_KINDS

    zeg = commands.add_parser("zegclip", help="ZegCLIP: train or import a one-stage zero-shot segmenter",
                              description=__doc__.split(":", 1)[1])  # fmt: skip
    sub = zeg.add_subparsers(dest="zegclip_command", required=True, metavar="ZEGCLIP_COMMAND")
    train = sub.add_parser("train", help="train on a benchmark's seen classes", description=cmd_train.__doc__)
    train.add_argument("--dataset", required=True, metavar="KIND", help=f"benchmark kind: {', '.join(DATASET_KINDS)}")
    train.add_argument("--data-root", required=True, help="folder holding the benchmark in its usual layout")
    train.add_argument("--split", default="train", help="split to train on (default train)")
    train.add_argument("--unseen", default="", help="comma-separated unseen classes (their pixels get no labels)")
    train.add_argument("--out", required=True, help="checkpoint folder")
    train.add_argument("--model", default="toy", help="open_clip ViT reference (default toy; e.g. ViT-B-16:openai)")
    train.add_argument("--transductive-from", default=None, help="inductive checkpoint to continue transductively")
    train.add_argument("--bank", default=None, help="segment bank: its concepts join the vocabulary")
    train.add_argument("--bank-fusion", type=float, default=0.0, help="weight of bank references in the queries")
    train.add_argument("--archives", default=None, help="archive run folder: bank concepts' images join training")
    train.add_argument("--bank-concepts", default=None, help="bank concepts fed as archives (default: not seen)")
    train.add_argument("--pool", default=None, help="pool folder for archives without images.tar")
    train.add_argument("--k", type=int, default=None, help="archive images per concept (default all)")
    train.add_argument("--crf", action="store_true", help="dense CRF on the archives' ReCo pseudo-masks")
    train.add_argument("--steps", type=int, default=20_000)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=2e-5, help="base learning rate (x10 on everything trained)")
    train.add_argument("--warmup", type=int, default=1500)
    train.add_argument("--crop-size", type=int, default=512)
    train.add_argument("--drop-path", type=float, default=0.1, help="stochastic depth rate of the frozen tower")
    train.add_argument("--no-photometric", action="store_true", help="no photometric distortion of training images")
    train.add_argument("--prompts", type=int, default=10, help="prompt tokens per layer")
    train.add_argument("--templates", default=None, help="comma-separated prompt templates with {}")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save-every", type=int, default=1000)
    train.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (resume later)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--limit", type=int, default=None, help="use only the first N samples")
    train.add_argument("--device", default=None)
    train.add_argument("--threads", type=int, default=None)
    train.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    train.set_defaults(func=cmd_train)
    imp = sub.add_parser(
        "import-official", help="convert an official checkpoint", description=cmd_import_official.__doc__
    )
    imp.add_argument("checkpoint", help="official .pth (mmseg: {'state_dict': ...})")
    imp.add_argument("--out", required=True, help="checkpoint folder to write")
    imp.add_argument("--classes", required=True, help="comma-separated class names in the checkpoint's order")
    imp.add_argument("--seen", default=None, help="comma-separated seen classes (inductive bias); none: transductive")
    imp.add_argument(
        "--model",
        default="ViT-B-16",
        help="open_clip architecture the backbone weights fill (run with QuickGELU, OpenAI's activation, whatever "
        "its config says; pixels normalised and classes embedded as the official code does)",
    )
    imp.add_argument("--prompts", type=int, default=None, help="prompt tokens (default: read from the checkpoint)")
    imp.set_defaults(func=cmd_import_official)
