"""ReCo+ on the toy world: ReCo (LGC+CE bank, CRF) pseudo-labels unlabelled target scenes, ReCo+ trains on them.

`python -m pipeline.toy.reco_plus_quality` prints mIoU of text-only labels, ReCo and ReCo+ on held-out benchmark
scenes (docs/segmenters/reco-plus.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

from pipeline.toy.bank_quality import add_protocol_arguments, toy_archives
from pipeline.toy.quality import BENCH_SEED, POOL_SEED, dense_labels, held_out, render_many, text_embeddings
from pipeline.toy.world import WorldSpec
from segment.cosegment import build_bank
from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder
from segment.pseudo_labels import pseudo_label
from segment.reco import ReCoSegmenter
from segment.reco_ablation import evaluate_labels, segment_all
from segment.reco_plus import ARCHS, TOY_CONFIG, ReCoPlusSegmenter, TrainConfig, train_reco_plus

TARGET_SEED = 7_000_003  # the toy world's unlabelled target images: neither the pool nor the benchmark


def toy_experiment(
    loaded,
    spec=None,
    pool_size: int = 1500,
    bench_size: int = 80,
    k: int = 20,
    target_size: int = 400,
    config: TrainConfig = TOY_CONFIG,
    out: Path | str | None = None,
    progress: bool = False,
    world_seed: int = 0,
) -> dict[str, float]:
    """mIoU on held-out toy scenes of text-only labels, ReCo (LGC+CE bank, CRF) and ReCo+ trained on its labels."""
    spec = spec or WorldSpec(rare_rate=0.05)
    classes = list(spec.classes)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    encoder = create_dense_encoder("clip-penultimate", clip=loaded)
    pool, pool_masks, _ = render_many(spec, held_out(POOL_SEED, world_seed), pool_size, workers=1, progress=False)
    archives, _ = toy_archives(loaded, spec, pool, pool_masks, k)
    del pool, pool_masks
    bank = build_bank(archives, encoder, ClipDenseEncoder(loaded), lgc=True, ce=True)
    reco = ReCoSegmenter(bank, clip=loaded, encoder=encoder, saliency=False, crf=True, device="cpu")
    timings["bank_s"] = time.perf_counter() - start
    bench, masks, _ = render_many(spec, held_out(BENCH_SEED, world_seed), bench_size, workers=1, progress=False)
    targets, target_masks, _ = render_many(
        spec, held_out(TARGET_SEED, world_seed), target_size, workers=1, progress=False
    )
    start = time.perf_counter()
    labels = pseudo_label(reco, targets, classes, progress=progress)
    timings["pseudo_label_s"] = time.perf_counter() - start
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(out) if out is not None else Path(scratch)
        train_reco_plus(targets, labels, len(classes), config, classes, out=folder, progress=progress)
        plus = ReCoPlusSegmenter(folder, device="cpu")
        timings["train_s"] = time.perf_counter() - start
        rows = {
            "text": evaluate_labels(dense_labels(loaded, bench, text_embeddings(loaded, classes)), masks, classes)[0],
            "reco": evaluate_labels(segment_all(reco, bench, classes), masks, classes)[0],
            "reco-plus": evaluate_labels(segment_all(plus, bench, classes), masks, classes)[0],
            "pseudo_labels_on_targets": evaluate_labels(labels, target_masks, classes)[0],
        }
    return {**rows, **timings}


def main(argv: list[str] | None = None) -> int:
    """Train ReCo+ on the toy world and print mIoU of text-only labels, ReCo and ReCo+ on the benchmark scenes."""
    from pipeline.core.models import load_model as load_clip

    parser = argparse.ArgumentParser(description=main.__doc__)
    add_protocol_arguments(parser, pool_size=1500, bench_size=80, k=20, rare=0.05)
    parser.add_argument("--target-size", type=int, default=400, help="unlabelled target images to pseudo-label")
    parser.add_argument("--steps", type=int, default=TOY_CONFIG.steps)
    parser.add_argument("--arch", default=TOY_CONFIG.arch, choices=ARCHS)
    parser.add_argument("--lr", type=float, default=TOY_CONFIG.lr)
    parser.add_argument("--backbone-lr-mult", type=float, default=TOY_CONFIG.backbone_lr_mult)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="keep the ReCo+ checkpoint in this folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = TrainConfig(
        **{
            **asdict(TOY_CONFIG),
            "steps": args.steps,
            "arch": args.arch,
            "lr": args.lr,
            "backbone_lr_mult": args.backbone_lr_mult,
            "seed": args.seed,
        }
    )
    start = time.perf_counter()
    result = toy_experiment(
        load_clip("toy", device="cpu"),
        WorldSpec(rare_rate=args.rare_rate, context_rate=args.context_rate),
        args.pool_size,
        args.bench_size,
        args.k,
        args.target_size,
        config,
        args.out,
        progress=True,
        world_seed=args.world_seed,
    )
    print(json.dumps({k: round(v, 4) for k, v in result.items()}))
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
