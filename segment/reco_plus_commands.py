"""`coarchive reco-plus train`: pseudo-label a folder of target images with ReCo and train ReCo+ on them."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def read_image_folder(folder: Path, size: int, limit: int | None = None) -> tuple:
    """(N, size, size, 3) uint8 images of a folder (short side resized, centre crop), sorted by name, and the
    names of files skipped as unreadable; ValueError if none can be read."""
    import numpy as np
    from PIL import Image, ImageOps

    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    if size < 8:
        raise ValueError(f"--size must be at least 8 pixels, got {size}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    images, skipped = [], []
    for path in paths[:limit] if limit else paths:
        try:
            with Image.open(path) as image:
                images.append(np.asarray(ImageOps.fit(image.convert("RGB"), (size, size))))
        except (OSError, ValueError, Image.DecompressionBombError):
            skipped.append(path.name)
    if not images:
        raise ValueError(f"no readable images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return np.stack(images), skipped


def cmd_reco_plus_train(args: argparse.Namespace) -> int:
    """Pseudo-label the target images with ReCo (bank, CRF) and train a ReCo+ network on them; resumable."""
    import torch

    from pipeline.core.models import load_model
    from segment.pseudo_labels import pseudo_label
    from segment.reco import ReCoSegmenter
    from segment.reco_plus import ARCHS, TOY_CONFIG, TrainConfig, train_reco_plus

    if args.arch is not None and args.arch not in ARCHS:
        raise ValueError(f"unknown --arch {args.arch!r}; known: {', '.join(ARCHS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    images, skipped = read_image_folder(Path(args.images), args.size, args.limit)
    if skipped:
        print(f"skipped {len(skipped)} unreadable files: {', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
    out = Path(args.out)
    reco = ReCoSegmenter(
        Path(args.bank),
        clip=load_model(args.model, device=args.device),
        saliency=not args.no_saliency,
        crf=True,
        device=args.device,
    )
    classes = list(reco.bank.concepts)
    start = time.perf_counter()
    labels = pseudo_label(reco, images, classes, progress=not args.quiet)
    print(f"pseudo-labelled {len(images)} images into {len(classes)} concepts in {time.perf_counter() - start:.0f} s")
    base = asdict(TOY_CONFIG) if args.recipe == "toy" else asdict(TrainConfig())
    overrides = {"arch": args.arch, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr}
    config = TrainConfig(**{**base, **{k: v for k, v in overrides.items() if v is not None}, "seed": args.seed})
    train_reco_plus(images, labels, len(classes), config, classes, out=out, resume=args.resume, progress=not args.quiet)
    print(f"wrote {out} (evaluate with: coarchive eval --segmenter reco-plus --checkpoint {out} ...)")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `coarchive reco-plus train` on the `coarchive` parser."""
    plus = commands.add_parser(
        "reco-plus", help="ReCo+: a network trained on ReCo's pseudo-labels", description=__doc__.split(":", 1)[1]
    )
    sub = plus.add_subparsers(dest="reco_plus_command", required=True, metavar="RECO_PLUS_COMMAND")
    train = sub.add_parser("train", help="pseudo-label a folder and train", description=cmd_reco_plus_train.__doc__)
    train.add_argument("--bank", required=True, help="segment bank folder (its concepts are the classes)")
    train.add_argument("--images", required=True, help="folder of unlabelled target images (searched recursively)")
    train.add_argument("--out", required=True, help="checkpoint folder (written as training goes; resumable)")
    train.add_argument("--model", default="toy", help="CLIP for ReCo's text and saliency (default toy)")
    train.add_argument("--size", type=int, default=96, help="images are resized and centre-cropped to this square")
    train.add_argument("--limit", type=int, default=None, help="use only the first N images")
    train.add_argument(
        "--recipe", choices=["paper", "toy"], default="paper", help="paper: DeepLabv3 R101, 20k steps; toy: LR-ASPP"
    )
    train.add_argument("--arch", default=None, help="override the recipe's torchvision segmentation architecture")
    train.add_argument("--steps", type=int, default=None, help="override the recipe's optimiser steps")
    train.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch size")
    train.add_argument("--lr", type=float, default=None, help="override the recipe's learning rate")
    train.add_argument("--seed", type=int, default=0, help="training seed")
    train.add_argument("--no-saliency", action="store_true", help="pseudo-label without the DenseCLIP saliency")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    train.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    train.set_defaults(func=cmd_reco_plus_train)
