"""CaR on the toy world: mIoU with and without bank evidence and CRF, query sets per iteration; markdown tables.

`python -m pipeline.toy.car_quality` prints them (docs/segmenters/car.md); its defaults are the test's protocol.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from pipeline.toy.bank_quality import toy_archives
from pipeline.toy.quality import BENCH_SEED, POOL_SEED, held_out, non_negative_int, render_many
from pipeline.toy.world import WorldSpec
from segment.bank import SegmentBank
from segment.car.segmenter import CaRSegmenter
from segment.cosegment import build_bank
from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder
from segment.metrics import confusion_matrix, iou_per_class, mean_iou

DEFAULTS = {"scenes": 12, "pool_size": 400, "k": 8}  # the protocol of tests/pipeline/toy/test_car_quality.py


def toy_bank(
    loaded, spec: WorldSpec, pool_size: int = DEFAULTS["pool_size"], k: int = DEFAULTS["k"], world_seed: int = 0
) -> SegmentBank:
    """A ReCo bank (LGC + CE, clip-penultimate features) co-segmented from top-k toy archives of a rendered pool."""
    images, masks, _ = render_many(spec, held_out(POOL_SEED, world_seed), pool_size, workers=1, progress=False)
    archives, _ = toy_archives(loaded, spec, images, masks, k=k)
    encoder = create_dense_encoder("clip-penultimate", clip=loaded)
    return build_bank(archives, encoder, ClipDenseEncoder(loaded), lgc=True, ce=True)


@dataclass
class ToyCarResult:
    """mIoU per variant, the query sets per iteration of the first images, and the settings measured."""

    miou: dict[str, float]
    traces: list[dict] = field(default_factory=list)
    iou: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> class -> IoU
    settings: dict = field(default_factory=dict)


def measure(
    loaded,
    images: np.ndarray,
    masks: np.ndarray,
    classes: list[str],
    bank: SegmentBank | None,
    traced: int = 3,
    **options,
) -> ToyCarResult:
    """mIoU of CaR on (N, H, W, 3) scenes with masks (N, H, W): text only and with bank evidence (when a bank is
    given), each without and with CRF (the CRF only post-processes the same recurrence)."""
    variants = {"text": None} if bank is None else {"text": None, "text + bank": bank}
    confusion: dict[str, np.ndarray] = {}
    traces = []
    for label, b in variants.items():
        plain = CaRSegmenter(loaded, bank=b, crf=False, device="cpu", **options)
        with_crf = CaRSegmenter(loaded, bank=b, crf=True, device="cpu", **options)
        for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
            concepts, queries, background = plain.check(classes)
            result = plain.run(image, queries)
            for name, seg in ((label, plain), (f"{label} + CRF", with_crf)):
                out = seg.assemble(image, concepts, queries, background, result)
                cm = confusion_matrix(out.labels, mask, len(classes))
                confusion[name] = confusion.get(name, 0) + cm
            if i < traced:
                truth = [classes[c] for c in np.unique(mask)]
                sets = [[queries[q] for q in step.queries] for step in result.steps]
                if result.stopped == "cap":
                    sets.append([queries[q] for q in result.queries])
                traces.append({"variant": label, "image": i, "truth": truth, "sets": sets, "stopped": result.stopped})
    miou = {name: float(mean_iou(cm)) for name, cm in confusion.items()}
    iou = {name: dict(zip(classes, iou_per_class(cm).tolist(), strict=True)) for name, cm in confusion.items()}
    return ToyCarResult(miou, traces, iou, {"images": len(images), **options})


def measure_world(
    loaded,
    world_seed: int = 0,
    scenes: int = DEFAULTS["scenes"],
    pool_size: int = DEFAULTS["pool_size"],
    k: int = DEFAULTS["k"],
    bank: bool = True,
    bench_rare_rate: float | None = None,
    **options,
) -> ToyCarResult:
    """CaR on `scenes` benchmark scenes of a held-out world, with a bank from that world's pool unless `bank` is off.

    `bench_rare_rate` draws the benchmark scenes with rare things that often (the pool keeps the world's rate), so
    that the rare concepts are measured; None keeps the world's rate."""
    spec = WorldSpec()
    segment_bank = toy_bank(loaded, spec, pool_size, k, world_seed) if bank else None
    bench_spec = spec if bench_rare_rate is None else replace(spec, rare_rate=bench_rare_rate)
    images, masks, _ = render_many(bench_spec, held_out(BENCH_SEED, world_seed), scenes, workers=1, progress=False)
    return measure(loaded, images, masks, list(spec.classes), segment_bank, **options)


def tables(result: ToyCarResult, rare: tuple[str, ...] = WorldSpec().rare) -> str:
    """Markdown: mIoU and the rare things' IoU per variant; then each traced image's query set per iteration."""
    lines = [
        "| CaR on the toy world | mIoU | " + " | ".join(f"{c} IoU" for c in rare) + " |",
        "|---" * (2 + len(rare)) + "|",
    ]
    for name, value in result.miou.items():
        cells = [f"{result.iou[name][c]:.3f}" for c in rare]
        lines.append(f"| {name} | {value:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "| variant | image | truth | query set per iteration | stopped |", "|---|---|---|---|---|"]
    for t in result.traces:
        sets = " → ".join("{" + ", ".join(s) + "}" for s in t["sets"])
        lines.append(f"| {t['variant']} | {t['image']} | {', '.join(t['truth'])} | {sets} | {t['stopped']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: measure CaR on toy benchmark scenes (with and without bank evidence and CRF)."""
    from pipeline.core.models import load_model

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--scenes", type=int, default=DEFAULTS["scenes"], help="benchmark scenes measured (BENCH_SEED)")
    parser.add_argument("--pool-size", type=int, default=DEFAULTS["pool_size"], help="pool images the bank comes from")
    parser.add_argument("--k", type=int, default=DEFAULTS["k"], help="images per concept archive")
    parser.add_argument("--no-bank", action="store_true", help="measure text-only CaR only")
    parser.add_argument(
        "--bench-rare-rate",
        type=float,
        default=None,
        help="draw the benchmark scenes with rare things this often (e.g. 0.5; the pool keeps 0.005)",
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a CaR setting, repeatable")
    parser.add_argument(
        "--world-seed", type=non_negative_int, default=0, help="another held-out world; 0 is the docs' protocol"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.scenes < 1:
        parser.error(f"--scenes must be positive, got {args.scenes}")
    if args.bench_rare_rate is not None and not 0 <= args.bench_rare_rate <= 1:
        parser.error(f"--bench-rare-rate must be in [0, 1], got {args.bench_rare_rate}")
    options = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes NAME=VALUE, got {item!r}")
        options[name] = json.loads(value) if value[:1] in "0123456789-[{tfn" else value
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    loaded = load_model("toy", device="cpu")
    try:
        result = measure_world(
            loaded,
            args.world_seed,
            args.scenes,
            args.pool_size,
            args.k,
            not args.no_bank,
            args.bench_rare_rate,
            **options,
        )
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    print(tables(result))
    rate = "" if args.bench_rare_rate is None else f" (rare rate {args.bench_rare_rate})"
    print(f"\n{args.scenes} scenes{rate}, pool {args.pool_size}, k {args.k}; {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.__dict__, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
