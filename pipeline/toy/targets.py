"""Every toy-world quality measurement on several held-out worlds: one JSON per (measurement, world), one table.

`python -m pipeline.toy.targets --world-seeds 0 1 2 --out targets/` measures and prints mean ± sd per metric with
each world's value; finished measurements are read back, so an interrupted run resumes. `--protocol ci` runs the
test suite's smaller protocols, whose worst world sets the test floors.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pipeline.toy.quality import non_negative_int
from pipeline.toy.world import WorldSpec

Metrics = dict[str, float]


def clip_quality(loaded, world_seed: int, ci: bool) -> Metrics:
    """Retrieval precision@50 and MaskCLIP value-path IoU per class (`coarchive toy eval`, or the test's protocol)."""
    from pipeline.toy.quality import measure_toy_quality

    spec = WorldSpec(rare_rate=0.02) if ci else WorldSpec()
    sizes = {"pool_size": 3000, "bench_size": 100} if ci else {}
    q = measure_toy_quality(loaded, spec, progress=False, world_seed=world_seed, **sizes)
    out = {"MaskCLIP value mIoU": q.miou, "MaskCLIP token mIoU": q.miou_tokens}
    out["p@50 common"] = q.mean_precision(list(spec.common))
    out["p@50 rare"] = q.mean_precision(list(spec.rare))
    out["MaskCLIP min thing IoU"] = min(q.iou[t] for t in spec.things)
    out.update({f"MaskCLIP IoU {c}": v for c, v in q.iou.items()})
    return out


def reco(loaded, world_seed: int, ci: bool) -> Metrics:
    """ReCo's ablation rows, with and without the saliency product (`python -m pipeline.toy.reco_ablation`)."""
    from pipeline.toy.reco_ablation import ABLATION_CONTEXT_RATE, CI_PROTOCOL, CI_SPEC, measure_reco_ablation
    from segment.reco_ablation import NO_SALIENCY_STEPS, PAPER_STEPS

    spec = CI_SPEC if ci else WorldSpec(context_rate=ABLATION_CONTEXT_RATE)
    sizes = CI_PROTOCOL if ci else {}
    steps = {**PAPER_STEPS, **NO_SALIENCY_STEPS}
    r = measure_reco_ablation(loaded, spec, steps=steps, world_seed=world_seed, **sizes)
    out = {f"ReCo {row}": v for row, v in r.miou.items()}
    out.update({f"ReCo {row}, things": r.things_miou(row, list(spec.things)) for row in r.miou})
    out.update({f"ReCo {row}, pixel acc": v for row, v in r.pixel_accuracy.items()})
    out.update(
        {f"ReCo seeds on things, bank {b}": r.mean_seed_precision(b, list(spec.things)) for b in r.seed_precision}
    )
    return out


def banks(loaded, world_seed: int, ci: bool) -> Metrics:
    """Text labels against plain and LGC+CE banks (`python -m pipeline.toy.bank_quality`)."""
    from pipeline.toy.bank_quality import VARIANTS, measure_bank_quality
    from segment.dense_encoders import create_dense_encoder

    spec = WorldSpec(rare_rate=0.05) if ci else WorldSpec()
    sizes = {"pool_size": 1500, "bench_size": 80, "k": 20} if ci else {}
    variants = {"plain": VARIANTS["plain"], "+LGC+CE": VARIANTS["+LGC+CE"]}
    encoder = create_dense_encoder("clip-penultimate", clip=loaded)
    q = measure_bank_quality(loaded, spec, encoder=encoder, variants=variants, world_seed=world_seed, **sizes)
    out = {}
    for method in q.iou:
        out[f"banks {method}"] = q.miou(method)
        out[f"banks {method}, things"] = q.miou(method, list(spec.things))
        out[f"banks {method}, stuff"] = q.miou(method, list(spec.stuff))
        out[f"banks {method}, rare"] = q.miou(method, list(spec.rare))
    for variant, per_class in q.seeds_on_class.items():
        out[f"banks seeds on things, {variant}"] = float(np.mean([per_class[c] for c in spec.things]))
        out[f"banks seeds on stuff (min), {variant}"] = min(per_class[c] for c in spec.stuff)
    return out


def car(loaded, world_seed: int, ci: bool) -> Metrics:
    """CaR text-only and with bank evidence, each without and with CRF (`python -m pipeline.toy.car_quality`)."""
    from pipeline.toy.car_quality import measure_world

    spec = WorldSpec()
    r = measure_world(loaded, world_seed)
    out = {f"CaR {variant}": v for variant, v in r.miou.items()}
    for variant, per_class in r.iou.items():
        out[f"CaR {variant}, rare"] = float(np.nanmean([per_class[c] for c in spec.rare]))
    return out


def zegclip(loaded, world_seed: int, ci: bool) -> Metrics:
    """ZegCLIP's four rows, 1,000 steps (`python -m pipeline.toy.zegclip_quality`); the test runs the inductive one."""
    from pipeline.toy.zegclip_quality import ToySettings, run_toy

    rows = ("inductive",) if ci else None
    results = run_toy(loaded, ToySettings(world_seed=world_seed), rows)
    return {f"ZegCLIP {row} {k}": v for row, r in results.items() if "hIoU" in r for k, v in r.items() if k != "steps"}


def reco_plus(loaded, world_seed: int, ci: bool) -> Metrics:
    """Text labels, ReCo and ReCo+ trained on ReCo's pseudo-labels (`python -m pipeline.toy.reco_plus_quality`)."""
    from pipeline.toy.reco_plus_quality import toy_experiment

    return {f"ReCo+ {k}": v for k, v in toy_experiment(loaded, world_seed=world_seed).items()}


MEASUREMENTS: dict[str, Callable[..., Metrics]] = {
    "clip": clip_quality,
    "reco": reco,
    "banks": banks,
    "car": car,
    "zegclip": zegclip,
    "reco-plus": reco_plus,
}


def measure_all(loaded, names: list[str], world_seeds: list[int], protocol: str, out: Path) -> dict[str, dict]:
    """Run each measurement on each world (skipping those already in `out`); metric -> {world seed: value}."""
    out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict] = {}
    for name in names:
        for seed in world_seeds:
            path = out / f"{protocol}-{name}-{seed}.json"
            if not path.exists():
                start = time.perf_counter()
                metrics = MEASUREMENTS[name](loaded, seed, protocol == "ci")
                metrics = {k: float(v) for k, v in metrics.items()}
                path.write_text(json.dumps({"seconds": time.perf_counter() - start, "metrics": metrics}, indent=1))
                print(f"{name} world {seed}: {time.perf_counter() - start:.0f} s", flush=True)
            for metric, value in json.loads(path.read_text())["metrics"].items():
                table.setdefault(metric, {})[seed] = value
    return table


def summary(table: dict[str, dict]) -> str:
    """Markdown: metric, mean ± sd over worlds, worst (lowest), and each world's value."""
    seeds = sorted({s for per_seed in table.values() for s in per_seed})
    lines = ["| metric | mean ± sd | min | " + " | ".join(f"world {s}" for s in seeds) + " |"]
    lines.append("|---" * (len(seeds) + 3) + "|")
    for metric, per_seed in table.items():
        values = np.array([per_seed[s] for s in seeds if s in per_seed])
        cells = " | ".join(f"{per_seed[s]:.3f}" if s in per_seed else "" for s in seeds)
        lines.append(f"| {metric} | {values.mean():.3f} ± {values.std(ddof=0):.3f} | {values.min():.3f} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure the toy-world quality targets on several held-out worlds and print one table."""
    from pipeline.core.models import load_model

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--world-seeds", type=non_negative_int, nargs="+", default=[0, 1, 2], help="held-out worlds (0: docs')"
    )
    parser.add_argument("--measure", nargs="+", choices=list(MEASUREMENTS), default=list(MEASUREMENTS))
    parser.add_argument("--protocol", choices=("docs", "ci"), default="docs", help="ci: the test suite's sizes")
    parser.add_argument("--model", default="toy", help="the CLIP: 'toy' or 'toy:/path/weights.safetensors'")
    parser.add_argument("--out", default="targets", help="folder of per-measurement JSON files (resumable)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    table = measure_all(
        load_model(args.model, device="cpu"), args.measure, args.world_seeds, args.protocol, Path(args.out)
    )
    print(summary(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
