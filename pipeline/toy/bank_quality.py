"""Segment-bank quality on the toy world: text-retrieved archives, co-segmented banks, dense IoU vs text labels.

`python -m pipeline.toy.bank_quality` prints the tables (docs/guides/cosegment.md); its protocol options are shared by
the other toy measurement scripts.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.toy.quality import (
    BENCH_SEED,
    POOL_SEED,
    dense_labels,
    held_out,
    image_embeddings,
    non_negative_int,
    render_many,
    text_embeddings,
)
from pipeline.toy.world import WorldSpec
from segment.bank import SegmentBank
from segment.bank_labels import label_with_bank
from segment.cosegment import ConceptImages, build_bank
from segment.dense_encoders import ClipDenseEncoder, DenseEncoder
from segment.metrics import confusion_matrix, iou_per_class

VARIANTS = {"plain": (False, False), "+LGC": (True, False), "+CE": (False, True), "+LGC+CE": (True, True)}


def toy_archives(
    loaded, spec: WorldSpec, images: np.ndarray, masks: np.ndarray, k: int
) -> tuple[list[ConceptImages], dict[str, float]]:
    """Top-k pool images (N, H, W, 3) per class by cosine(image, text); stuff classes are context concepts.

    Returns the archives (classes in spec order) and each archive's precision (fraction of images holding the class).
    """
    text = text_embeddings(loaded, list(spec.classes))  # (C, d)
    scores = image_embeddings(loaded, images) @ text.T  # (N, C)
    top = torch.topk(scores, k, dim=0).indices.T.numpy()  # (C, k)
    archives, precision = [], {}
    for c, name in enumerate(spec.classes):
        rows = top[c]
        precision[name] = float(np.mean([(masks[r] == c).any() for r in rows]))
        archives.append(
            ConceptImages(name, [images[r] for r in rows], text[c], context=name in spec.stuff, ids=rows.tolist())
        )
    return archives, precision


@dataclass
class BankQuality:
    """Per-class IoU of each labelling method on toy benchmark scenes, and the archives' precision."""

    iou: dict[str, dict[str, float]]  # method -> class -> IoU
    archive_precision: dict[str, float]
    seeds_on_class: dict[str, dict[str, float]]  # variant -> class -> fraction of seeds on a pixel of the class
    settings: dict = field(default_factory=dict)

    def miou(self, method: str, classes: list[str] | None = None) -> float:
        """Mean IoU of `method` over `classes` (default: all)."""
        values = self.iou[method]
        return float(np.nanmean([values[c] for c in (classes or list(values))]))


def seed_hit_rate(bank: SegmentBank, archives: list[ConceptImages], spec: WorldSpec, masks_of) -> dict[str, float]:
    """Per concept, the fraction of its seeds that land on a pixel of that class (seed cell centre, ground truth)."""
    out = {}
    for c, a in enumerate(archives):
        info = bank.provenance["concepts"][a.concept]
        gh, gw = info["grid"]
        masks = masks_of(a)
        hits = []
        for (r, q), mask in zip(info["seeds"], masks, strict=True):
            y = int((r + 0.5) * mask.shape[0] / gh)
            x = int((q + 0.5) * mask.shape[1] / gw)
            hits.append(mask[y, x] == c)
        out[a.concept] = float(np.mean(hits))
    return out


def measure_bank_quality(
    loaded,
    spec: WorldSpec | None = None,
    pool_size: int = 10_000,
    bench_size: int = 500,
    k: int = 50,
    encoder: DenseEncoder | None = None,
    variants: dict[str, tuple[bool, bool]] | None = None,
    progress: bool = False,
    world_seed: int = 0,
) -> BankQuality:
    """Build banks for each (LGC, CE) variant from toy archives and measure dense IoU on held-out scenes."""
    spec = spec or WorldSpec()
    variants = variants or VARIANTS
    saliency = ClipDenseEncoder(loaded)
    encoder = encoder or saliency
    pool_images, pool_masks, _ = render_many(spec, held_out(POOL_SEED, world_seed), pool_size, progress=progress)
    archives, precision = toy_archives(loaded, spec, pool_images, pool_masks, k)
    del pool_images
    bench, masks, _ = render_many(spec, held_out(BENCH_SEED, world_seed), bench_size, progress=progress)
    classes = list(spec.classes)
    iou, seeds = {}, {}

    def score(pred: np.ndarray) -> dict[str, float]:
        return dict(zip(classes, iou_per_class(confusion_matrix(pred, masks, len(classes))).tolist(), strict=True))

    iou["text (MaskCLIP)"] = score(dense_labels(loaded, bench, text_embeddings(loaded, classes)))
    for name, (lgc, ce) in variants.items():
        bank = build_bank(archives, encoder, saliency, lgc=lgc, ce=ce)
        seeds[name] = seed_hit_rate(bank, archives, spec, lambda a: pool_masks[a.ids])
        iou[f"bank {name}"] = score(label_with_bank(encoder, bank, bench))
    settings = {"pool_size": pool_size, "bench_size": bench_size, "k": k, "encoder": encoder.name}
    settings.update(world_seed=world_seed, rare_rate=spec.rare_rate, context_rate=spec.context_rate)
    return BankQuality(iou, precision, seeds, settings)


def quality_tables(quality: BankQuality, spec: WorldSpec) -> str:
    """Markdown tables: IoU per class and mIoU (all, stuff, things) per method; archive precision and seed hits."""
    methods = list(quality.iou)
    lines = ["| class | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for c in spec.classes:
        lines.append(f"| {c} | " + " | ".join(f"{quality.iou[m][c]:.2f}" for m in methods) + " |")
    for label, group in (("mIoU", None), ("mIoU stuff", list(spec.stuff)), ("mIoU things", list(spec.things))):
        lines.append(f"| **{label}** | " + " | ".join(f"**{quality.miou(m, group):.2f}**" for m in methods) + " |")
    variants = list(quality.seeds_on_class)
    lines += ["", "| class | archive precision | " + " | ".join(f"seeds on class, {v}" for v in variants) + " |"]
    lines.append("|---" * (len(variants) + 2) + "|")
    for c in spec.classes:
        row = [f"{quality.archive_precision[c]:.2f}"] + [f"{quality.seeds_on_class[v][c]:.2f}" for v in variants]
        lines.append(f"| {c} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def report_measurement(tables: str, result, settings: dict, start: float, json_path: str | None) -> None:
    """Print a toy measurement's tables and a settings line with its wall time; write it all as JSON when asked."""
    print(tables)
    print(f"\n{json.dumps(settings)}; {time.perf_counter() - start:.0f} s")
    if json_path:
        Path(json_path).write_text(json.dumps(asdict(result), indent=2))


def add_protocol_arguments(
    parser: argparse.ArgumentParser,
    pool_size: int = 10_000,
    bench_size: int = 500,
    k: int = 50,
    rare: float = 0.005,
    context: float = 0.0,
) -> None:
    """The toy-world measurement protocol's options, shared by the bank, ablation and ReCo+ scripts."""
    parser.add_argument("--pool-size", type=int, default=pool_size, help="pool images the archives come from")
    parser.add_argument("--bench-size", type=int, default=bench_size, help="held-out benchmark scenes scored")
    parser.add_argument("--k", type=int, default=k, help="images per concept archive")
    parser.add_argument("--rare-rate", type=float, default=rare, help="fraction of images holding each rare thing")
    parser.add_argument(
        "--context-rate", type=float, default=context, help="chance that a scene's things favour its background"
    )
    parser.add_argument(
        "--world-seed",
        type=non_negative_int,
        default=0,
        help="another held-out world (pool, benchmark); 0 is the docs' protocol",
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: measure bank quality on the toy world and print markdown tables."""
    from pipeline.core.models import load_model
    from segment.dense_encoders import create_dense_encoder

    parser = argparse.ArgumentParser(description=main.__doc__)
    add_protocol_arguments(parser)
    parser.add_argument("--encoder", default="clip-penultimate", help="clip-penultimate, clip, clip-tokens, timm:NAME")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    loaded = load_model("toy", device="cpu")
    spec = WorldSpec(rare_rate=args.rare_rate, context_rate=args.context_rate)
    start = time.perf_counter()
    quality = measure_bank_quality(
        loaded,
        spec,
        args.pool_size,
        args.bench_size,
        args.k,
        encoder=create_dense_encoder(args.encoder, clip=loaded),
        progress=True,
        world_seed=args.world_seed,
    )
    report_measurement(quality_tables(quality, spec), quality, quality.settings, start, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
