"""CaR speed: the batched segmenter vs the official-structure loop (per query, per template), same random-init
open_clip ViT and inputs; prints seconds per image, the speed-up, and whether the masks are identical."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pipeline.toy.quality import BENCH_SEED, render_many
from pipeline.toy.world import WorldSpec
from segment.car.reference import reference_run
from segment.car.segmenter import CaRSegmenter

CONCEPTS = ["grass", "water", "sand", "brick", "sky", "circle", "square", "triangle", "star", "ring"]


def random_init_segmenter(loaded, concepts: list[str], device: str, **options) -> CaRSegmenter:
    """CaR's batched segmenter on a random-init CLIP: CaR's 15 templates unless `templates` is given, three background
    queries, and a confidence threshold that keeps the above-average queries (random scores sit near 1/len)."""
    from pipeline.core.text import templates

    options.setdefault("templates", templates("car"))
    return CaRSegmenter(
        loaded,
        background_queries=("road", "wall", "tree"),
        vocabulary=None,
        device=device,
        confidence_threshold=1 / len(concepts) + 1e-4,
        **options,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: time both implementations and compare their masks."""
    from pipeline.core.models import load_model

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture, random init (or coarchive-toy-vit)")
    parser.add_argument("--images", type=int, default=2, help="toy scenes segmented")
    parser.add_argument("--size", type=int, default=96, help="scene side in pixels (scenes are resized to it)")
    parser.add_argument("--concepts", type=int, default=len(CONCEPTS), help=f"concepts (at most {len(CONCEPTS)})")
    parser.add_argument("--templates", default="car", help="classifier template set (car: CaR's 15)")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"], help="model dtype")
    parser.add_argument("--iterations", type=int, default=3, help="recurrence cap")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if not 1 <= args.concepts <= len(CONCEPTS):
        parser.error(f"--concepts must be in 1..{len(CONCEPTS)}, got {args.concepts}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    loaded = load_model(args.arch, device=args.device)
    loaded.model.to(getattr(torch, args.dtype))
    from pipeline.core.text import templates

    concepts = CONCEPTS[: args.concepts]
    seg = random_init_segmenter(
        loaded, concepts, args.device, templates=templates(args.templates), max_iterations=args.iterations
    )
    images, _, _ = render_many(
        WorldSpec(image_size=max(32, args.size)), BENCH_SEED, args.images, workers=1, progress=False
    )
    seg.segment(images[-1], concepts)  # warm-up (allocator, kernels), not timed
    rows, same, fast_total, slow_total = [], True, 0.0, 0.0
    for i, image in enumerate(images):
        start = time.perf_counter()
        fast, run = seg.segment(image, concepts)
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        slow = reference_run(seg, image, concepts)
        slow_s = time.perf_counter() - start
        reference = seg.assemble(image, *seg.check(concepts), slow)
        identical = bool(np.array_equal(fast.labels, reference.labels))
        agree = float((fast.labels == reference.labels).mean())
        same &= identical
        fast_total, slow_total = fast_total + fast_s, slow_total + slow_s
        sets = " → ".join(str(len(s.queries)) for s in run.steps)
        rows.append(
            f"| {i} | {sets} | {slow_s:.2f} | {fast_s:.2f} | {slow_s / fast_s:.1f}x | {identical} ({agree:.4f}) |"
        )
    n = len(images)
    print(
        f"{args.arch} (random init, {args.dtype}), {args.size}-px scenes, {len(concepts)} concepts, "
        f"{len(seg.classifier.text.templates)} templates, {torch.get_num_threads()} threads, {args.device}\n"
    )
    print("| image | queries per iteration | reference s | batched s | speed-up | identical masks (pixel agreement) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"| all | | {slow_total / n:.2f} | {fast_total / n:.2f} | {slow_total / fast_total:.1f}x | {same} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
