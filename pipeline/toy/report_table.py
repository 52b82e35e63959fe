"""Markdown tables of a model's toy-world quality, as printed by `coarchive toy eval` and pasted in the README."""

from __future__ import annotations

import math

from pipeline.toy.quality import ToyQuality
from pipeline.toy.world import WorldSpec


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


def quality_table(quality: ToyQuality, spec: WorldSpec) -> str:
    """Two markdown tables: retrieval precision per thing (rare ones marked) and dense IoU per class."""
    lines = [f"| thing | precision@{quality.k} | R-precision |", "|---|---|---|"]
    for thing in spec.things:
        label = f"{thing} (rare)" if thing in spec.rare else thing
        lines.append(f"| {label} | {_fmt(quality.precision[thing])} | {_fmt(quality.r_precision[thing])} |")
    common = [t for t in spec.things if t not in spec.rare]
    lines.append(f"| **mean, common** | **{_fmt(quality.mean_precision(common))}** | |")
    if spec.rare:
        lines.append(f"| **mean, rare** | **{_fmt(quality.mean_precision(list(spec.rare)))}** | |")
    lines += ["", "| class | dense IoU, MaskCLIP value path | dense IoU, token path |", "|---|---|---|"]
    lines += [f"| {c} | {_fmt(quality.iou[c])} | {_fmt(quality.iou_tokens[c])} |" for c in spec.classes]
    lines.append(f"| **mIoU** | **{_fmt(quality.miou)}** | **{_fmt(quality.miou_tokens)}** |")
    lines.append(
        f"\npool {quality.pool_size} images, benchmark {quality.bench_size} images, world seed {quality.world_seed}"
    )
    return "\n".join(lines)
