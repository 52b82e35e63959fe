"""ZegCLIP on the toy world: mIoU seen / unseen / hIoU for inductive, transductive and bank-fed training.

`python -m pipeline.toy.zegclip_quality` prints the markdown table (every number reproducible from its options).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from pipeline.toy.quality import (
    BENCH_SEED,
    POOL_SEED,
    TEMPLATES,
    held_out,
    non_negative_int,
    positive_int,
    render_many,
)
from pipeline.toy.world import WorldSpec
from segment.zegclip.data import TrainingSet, check_split, split_masks
from segment.zegclip.model import ModelConfig, ZegCLIP
from segment.zegclip.train import SEEN_BIAS, TrainConfig, train_zegclip
from segment.zegclip.vocabulary import Vocabulary, bank_references, embed_texts

TRAIN_SEED = 7_000_004  # the toy world's ZegCLIP training scenes: neither the pool, the benchmark nor ReCo+'s targets
UNSEEN = ("star", "ring")
# 64-px crops of the 96-px scenes (8 x 8 patches) halve a step's cost; lr x10 (3e-3) as the official head's.
TOY_TRAIN = TrainConfig(  # without the official photometric distortion and drop path (README: what they do here)
    steps=1000,
    batch_size=8,
    lr=3e-4,
    warmup=15,
    crop_size=64,
    scale_range=(0.75, 1.25),
    save_every=10**9,
    photometric=False,
    drop_path=0.0,
)


@dataclass(frozen=True)
class ToySettings:
    """The toy measurement's protocol."""

    unseen: tuple[str, ...] = UNSEEN
    train_size: int = 300
    bench_size: int = 100
    pool_size: int = 1500
    k: int = 20
    prompts: int = 10
    train: TrainConfig = TOY_TRAIN
    transductive_steps: int = 500
    fusion: float = 0.5
    rare_rate: float = 0.05
    world_seed: int = 0  # another held-out world (training scenes, pool, benchmark); 0 is the docs' protocol
    window: int | None = None  # inference window side; None: the training crop, as the official (512 and 512)


def seen_unseen_iou(pred: np.ndarray, masks: np.ndarray, classes: list[str], unseen) -> dict[str, float]:
    """mIoU over seen and unseen classes, their harmonic mean (hIoU) and pixel accuracy, for (N, H, W) labels."""
    from segment.metrics import confusion_matrix, iou_per_class, pixel_accuracy

    confusion = confusion_matrix(pred, masks, len(classes))
    iou = iou_per_class(confusion)
    seen = float(np.nanmean([iou[i] for i, c in enumerate(classes) if c not in unseen]))
    novel = float(np.nanmean([iou[classes.index(c)] for c in unseen]))
    h = 2 * seen * novel / (seen + novel) if seen + novel > 0 else 0.0
    return {"pAcc": pixel_accuracy(confusion), "mIoU seen": seen, "mIoU unseen": novel, "hIoU": h}


def predict_labels(segmenter, images: np.ndarray, classes: list[str]) -> np.ndarray:
    """(N, H, W) label maps of the segmenter over `classes`."""
    out = []
    for start in range(0, len(images), 32):
        out += [r.labels for r in segmenter.predict_batch(list(images[start : start + 32]), classes)]
    return np.stack(out)


def run_toy(loaded, settings: ToySettings = ToySettings(), rows=None, progress: bool = False) -> dict[str, dict]:
    """Train each row's ZegCLIP on the toy world and measure it on held-out benchmark scenes."""
    from segment.zegclip.segmenter import ZegCLIPSegmenter

    rows = rows or ("inductive", "transductive", "bank-fed (a) archives", "bank-fused (b) queries")
    spec = WorldSpec(rare_rate=settings.rare_rate)
    classes = list(spec.classes)
    unseen = list(settings.unseen)
    seen = check_split(classes, unseen)
    images, masks, _ = render_many(
        spec, held_out(TRAIN_SEED, settings.world_seed), settings.train_size, workers=1, progress=False
    )
    bench, bench_masks, _ = render_many(
        spec, held_out(BENCH_SEED, settings.world_seed), settings.bench_size, workers=1, progress=False
    )
    data = TrainingSet(list(images), split_masks(list(masks), classes, unseen), seen)
    vocab = Vocabulary(classes, embed_texts(loaded, classes, TEMPLATES))
    config = settings.train
    results: dict[str, dict] = {}

    def fit(name, train_set, vocabulary, pseudo=(), init=None, steps=None) -> ZegCLIP:
        torch.manual_seed(config.seed)
        model = ZegCLIP(loaded.model.visual, ModelConfig(num_tokens=settings.prompts))
        cfg = replace(config, steps=steps or config.steps, warmup=min(config.warmup, steps or config.steps))
        start = time.perf_counter()
        if init is not None:
            model.load_trainable_state_dict(init)
        train_zegclip(model, train_set, vocabulary, cfg, "toy", pseudo_classes=pseudo, progress=progress)
        bias = 0.0 if pseudo else SEEN_BIAS
        window = settings.window or cfg.crop_size  # the grid (and positions) the model was trained on
        seg = ZegCLIPSegmenter(
            model=model, vocabulary=vocabulary, biased=train_set.classes, seen_bias=bias, device="cpu", crop_size=window
        )
        row = seen_unseen_iou(predict_labels(seg, bench, classes), bench_masks, classes, unseen)
        results[name] = {**row, "train_s": time.perf_counter() - start, "steps": cfg.steps}
        return model

    inductive = fit("inductive", data, vocab)
    state = {k: v.clone() for k, v in inductive.trainable_state_dict().items()}
    if "transductive" in rows:
        both = TrainingSet(data.images, data.labels, seen + unseen)
        fit("transductive", both, vocab, pseudo=unseen, init=state, steps=settings.transductive_steps)
    if any(r.startswith("bank") for r in rows):
        from pipeline.toy.bank_quality import toy_archives
        from segment.cosegment import build_bank
        from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder
        from segment.reco import ReCoSegmenter
        from segment.zegclip.bank_feed import archive_training_set

        start = time.perf_counter()
        pool, pool_masks, _ = render_many(
            spec, held_out(POOL_SEED, settings.world_seed), settings.pool_size, workers=1, progress=False
        )
        archives, _ = toy_archives(loaded, spec, pool, pool_masks, settings.k)
        del pool, pool_masks
        saliency = ClipDenseEncoder(loaded)
        if "bank-fed (a) archives" in rows:
            encoder = create_dense_encoder("clip-penultimate", clip=loaded)
            bank = build_bank(archives, encoder, saliency, lgc=True, ce=True)
            reco = ReCoSegmenter(bank, clip=loaded, encoder=encoder, saliency=False, crf=False, device="cpu")
            fed = {a.concept: a.images for a in archives if a.concept in unseen}
            extra = archive_training_set(reco, fed, bank.concepts, spec.image_size)
            results["bank_s"] = {"seconds": time.perf_counter() - start}
            fit("bank-fed (a) archives", data + extra, vocab)
        if "bank-fused (b) queries" in rows:
            joint = build_bank(archives, saliency, saliency, lgc=True, ce=True)  # references in the joint space
            fused = Vocabulary(classes, vocab.text, bank_references(joint, classes), settings.fusion)
            fit("bank-fused (b) queries", data, fused)
    return results


def table(results: dict[str, dict]) -> str:
    """The markdown table of the measured rows."""
    lines = ["| training | steps | pAcc | mIoU seen | mIoU unseen | hIoU | train s |", "|---" * 7 + "|"]
    for name, row in results.items():
        if "hIoU" not in row:
            continue
        cells = [f"{row[k]:.3f}" for k in ("pAcc", "mIoU seen", "mIoU unseen", "hIoU")]
        lines.append(f"| {name} | {row['steps']} | " + " | ".join(cells) + f" | {row['train_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure ZegCLIP on the toy world (seen/unseen split of shapes) and print the markdown table."""
    from pipeline.core.models import load_model

    parser = argparse.ArgumentParser(description=main.__doc__)
    d = ToySettings()
    parser.add_argument("--unseen", default=",".join(d.unseen), help="comma-separated unseen thing classes")
    parser.add_argument("--train-size", type=int, default=d.train_size)
    parser.add_argument("--bench-size", type=int, default=d.bench_size)
    parser.add_argument("--pool-size", type=int, default=d.pool_size)
    parser.add_argument("--k", type=int, default=d.k, help="archive images per concept (bank-fed rows)")
    parser.add_argument("--steps", type=int, default=d.train.steps)
    parser.add_argument("--transductive-steps", type=int, default=d.transductive_steps)
    parser.add_argument("--batch-size", type=int, default=d.train.batch_size)
    parser.add_argument("--lr", type=float, default=d.train.lr)
    parser.add_argument("--prompts", type=int, default=d.prompts)
    parser.add_argument("--fusion", type=float, default=d.fusion, help="bank reference weight in fused queries")
    parser.add_argument("--rows", default=None, help="comma-separated subset of rows (default all)")
    parser.add_argument("--seed", type=int, default=0, help="the training seed")
    parser.add_argument(
        "--world-seed", type=non_negative_int, default=0, help="another held-out world; 0 is the docs' protocol"
    )
    parser.add_argument("--photometric", action="store_true", help="the official photometric distortion")
    parser.add_argument("--drop-path", type=float, default=0.0, help="stochastic depth rate (official 0.1)")
    parser.add_argument(
        "--window", type=positive_int, default=None, help="inference window side in pixels (default: the crop)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = replace(TOY_TRAIN, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    train = replace(train, photometric=args.photometric, drop_path=args.drop_path)
    settings = ToySettings(
        tuple(c.strip() for c in args.unseen.split(",") if c.strip()),
        args.train_size, args.bench_size, args.pool_size, args.k, args.prompts, train,
        args.transductive_steps, args.fusion, world_seed=args.world_seed, window=args.window,
    )  # fmt: skip
    rows = tuple(r.strip() for r in args.rows.split(",")) if args.rows else None
    start = time.perf_counter()
    results = run_toy(load_model("toy", device="cpu"), settings, rows, progress=True)
    print(table(results))
    print(f"\n{time.perf_counter() - start:.0f} s; settings {json.dumps(asdict(settings))}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "settings": asdict(settings)}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
