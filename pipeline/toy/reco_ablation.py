"""ReCo's component ablation on the toy world: DenseCLIP saliency, LGC, CE and CRF, step by step, on held-out scenes.

`python -m pipeline.toy.reco_ablation` prints the tables (docs/segmenters/reco.md); the demo and the test run its
small protocol (CI_SPEC, CI_PROTOCOL).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.toy.bank_quality import add_protocol_arguments, report_measurement, seed_hit_rate, toy_archives
from pipeline.toy.quality import BENCH_SEED, POOL_SEED, dense_labels, held_out, render_many, text_embeddings
from pipeline.toy.world import WorldSpec
from segment.bank import SegmentBank
from segment.cosegment import build_bank
from segment.dense_encoders import ClipDenseEncoder, DenseEncoder, create_dense_encoder
from segment.reco import ReCoSegmenter
from segment.reco_ablation import NO_SALIENCY_STEPS, PAPER_STEPS, Step, bank_name, evaluate_labels, segment_all

TEXT = "text (MaskCLIP)"
# The ablation's world: every scene's things come from its background's natives, so archives share a context (as
# boats share water) that LGC and CE must keep out of the seeds. In a world without context there is nothing to remove.
ABLATION_CONTEXT_RATE = 1.0
# The small protocol the test and the demo run (about 30 s): its world and its sizes.
CI_SPEC = WorldSpec(rare_rate=0.05, context_rate=ABLATION_CONTEXT_RATE)
CI_PROTOCOL = {"pool_size": 1500, "bench_size": 80, "k": 20}


@dataclass
class AblationResult:
    """mIoU, pixel accuracy and per-class IoU of each ablation row on the toy benchmark."""

    miou: dict[str, float]
    pixel_accuracy: dict[str, float]
    iou: dict[str, dict[str, float]]  # row -> class -> IoU
    settings: dict = field(default_factory=dict)
    seed_precision: dict[str, dict[str, float]] = field(default_factory=dict)  # bank -> class -> seeds on it
    seed_cells: dict[str, dict[str, list[list[int]]]] = field(default_factory=dict)  # bank -> class -> [id, row, col]

    def mean_seed_precision(self, bank: str, names: list[str]) -> float:
        """Mean over `names` of the share of the bank's seeds that land on the concept."""
        return float(np.mean([self.seed_precision[bank][n] for n in names]))

    def things_miou(self, row: str, things: list[str]) -> float:
        """Mean IoU of `row` over the thing classes."""
        return float(np.nanmean([self.iou[row][c] for c in things]))


def measure_reco_ablation(
    loaded,
    spec: WorldSpec | None = None,
    pool_size: int = 10_000,
    bench_size: int = 500,
    k: int = 50,
    encoder: DenseEncoder | None = None,
    steps: dict[str, Step] | None = None,
    progress: bool = False,
    world_seed: int = 0,
) -> AblationResult:
    """Build one bank per (LGC, CE) pair from toy archives; segment held-out scenes with ReCo for every step."""
    spec = spec or WorldSpec()
    steps = steps or PAPER_STEPS
    saliency = ClipDenseEncoder(loaded)
    encoder = encoder or create_dense_encoder("clip-penultimate", clip=loaded)
    pool_images, pool_masks, _ = render_many(spec, held_out(POOL_SEED, world_seed), pool_size, progress=progress)
    archives, precision = toy_archives(loaded, spec, pool_images, pool_masks, k)
    del pool_images
    bench, masks, _ = render_many(spec, held_out(BENCH_SEED, world_seed), bench_size, progress=progress)
    classes = list(spec.classes)
    rows: dict[str, tuple[float, float, dict[str, float]]] = {}
    rows[TEXT] = evaluate_labels(dense_labels(loaded, bench, text_embeddings(loaded, classes)), masks, classes)
    banks: dict[str, SegmentBank] = {}
    seeds: dict[str, dict[str, float]] = {}
    cells: dict[str, dict[str, list[list[int]]]] = {}
    for name, step in steps.items():
        key = bank_name(step.lgc, step.ce)
        if key not in banks:
            banks[key] = build_bank(archives, encoder, saliency, lgc=step.lgc, ce=step.ce)
            seeds[key] = seed_hit_rate(banks[key], archives, spec, lambda a: pool_masks[a.ids])
            info = banks[key].provenance["concepts"]
            cells[key] = {
                c: [[i, *at] for at, i in zip(info[c]["seeds"], info[c]["ids"], strict=True)] for c in classes
            }
        segmenter = ReCoSegmenter(
            banks[key],
            clip=loaded,
            encoder=encoder,
            saliency=step.saliency,
            crf=step.crf,
            device="cpu",
            temperature=step.temperature,
        )
        rows[name] = evaluate_labels(segment_all(segmenter, bench, classes), masks, classes)
        if progress:
            print(f"{name}: mIoU {rows[name][0]:.3f}", flush=True)
    grid = next(iter(banks.values())).provenance["concepts"][classes[0]]["grid"]
    settings = {"pool_size": pool_size, "bench_size": bench_size, "k": k, "encoder": encoder.name, "grid": grid}
    settings.update(rare_rate=spec.rare_rate, context_rate=spec.context_rate, archive_precision=precision)
    settings.update(world_seed=world_seed)
    return AblationResult(
        {n: r[0] for n, r in rows.items()},
        {n: r[1] for n, r in rows.items()},
        {n: r[2] for n, r in rows.items()},
        settings,
        seeds,
        cells,
    )


def ablation_table(result: AblationResult, spec: WorldSpec) -> str:
    """Markdown: mIoU (all, stuff, things) and pixel accuracy per row, then per-class IoU."""
    things, stuff = list(spec.things), list(spec.stuff)
    lines = ["| row | mIoU | stuff | things | pixel acc |", "|---|---|---|---|---|"]
    for row in result.miou:
        s, t = (float(np.nanmean([result.iou[row][c] for c in g])) for g in (stuff, things))
        lines.append(f"| {row} | {result.miou[row]:.3f} | {s:.3f} | {t:.3f} | {result.pixel_accuracy[row]:.3f} |")
    rows = list(result.miou)
    lines += ["", "| class | " + " | ".join(rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for c in spec.classes:
        lines.append(f"| {c} | " + " | ".join(f"{result.iou[r][c]:.2f}" for r in rows) + " |")
    banks = list(result.seed_precision)
    lines += ["", "| seeds on the concept, bank | " + " | ".join(banks) + " |", "|---" * (len(banks) + 1) + "|"]
    for label, names in (("things", things), ("stuff", stuff)):
        cells = " | ".join(f"{result.mean_seed_precision(b, names):.2f}" for b in banks)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: ReCo's ablation on the toy world, printed as markdown tables."""
    from pipeline.core.models import load_model

    parser = argparse.ArgumentParser(description=main.__doc__)
    add_protocol_arguments(parser, context=ABLATION_CONTEXT_RATE)
    parser.add_argument("--model", default="toy", help="the CLIP: 'toy' or 'toy:/path/weights.safetensors'")
    parser.add_argument("--encoder", default="clip-penultimate", help="clip, clip-tokens or clip-penultimate")
    parser.add_argument(
        "--temperatures", type=float, nargs="*", default=[], help="extra rows: +both with these saliency temperatures"
    )
    parser.add_argument("--no-saliency-rows", action="store_true", help="also the banks without the saliency product")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, device="cpu")
    spec = WorldSpec(rare_rate=args.rare_rate, context_rate=args.context_rate)
    steps = dict(PAPER_STEPS)
    if args.no_saliency_rows:
        steps.update(NO_SALIENCY_STEPS)
    for t in args.temperatures:
        steps[f"+both, T={t:g}"] = Step(True, True, True, False, t)
        steps[f"+both+CRF, T={t:g}"] = Step(True, True, True, True, t)
    start = time.perf_counter()
    encoder = create_dense_encoder(args.encoder, clip=loaded)
    result = measure_reco_ablation(
        loaded,
        spec,
        args.pool_size,
        args.bench_size,
        args.k,
        encoder=encoder,
        steps=steps,
        progress=True,
        world_seed=args.world_seed,
    )
    settings = {k: v for k, v in result.settings.items() if k != "archive_precision"}
    report_measurement(ablation_table(result, spec), result, settings, start, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
