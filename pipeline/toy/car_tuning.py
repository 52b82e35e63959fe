"""Tune CaR's toy preset on pool-side scenes only: a grid of settings, mIoU per variant on a tuning split.

`python -m pipeline.toy.car_tuning --grid '{"confidence_threshold": [0.2, 0.3]}'` renders TUNING_SEED scenes (disjoint
from every world's pool and benchmark seeds), builds the bank from world 0's pool as car_quality does, and prints one
line per setting, best first. The benchmark scenes are never rendered here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch

from pipeline.toy.car_quality import DEFAULTS, measure, toy_bank
from pipeline.toy.quality import POOL_SEED, WORLD_SEED_STRIDE, render_many
from pipeline.toy.world import WorldSpec

TUNING_SEED = POOL_SEED + WORLD_SEED_STRIDE // 2  # between world 0's pool and world 1's: no world renders it


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, as keyword dicts."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def tune(loaded, grid: dict[str, list], scenes: int = 48, bank: bool = True, fixed: dict | None = None) -> list[dict]:
    """mIoU per variant (and per class) of each grid point on `scenes` tuning scenes, best text-only first."""
    spec = WorldSpec()
    images, masks, _ = render_many(spec, TUNING_SEED, scenes, workers=1, progress=False)
    segment_bank = toy_bank(loaded, spec, DEFAULTS["pool_size"], DEFAULTS["k"]) if bank else None
    rows = []
    for point in grid_points(grid):
        options = {**(fixed or {}), **point}
        result = measure(loaded, images, masks, list(spec.classes), segment_bank, traced=0, **options)
        rows.append({"settings": point, "miou": result.miou, "iou": result.iou})
    return sorted(rows, key=lambda r: -r["miou"]["text"])


def main(argv: list[str] | None = None) -> int:
    """Command line: grid-search CaR settings on the toy tuning split."""
    from pipeline.core.models import load_model

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--grid", required=True, help="JSON: setting name -> list of values")
    parser.add_argument("--fixed", default="{}", help="JSON: settings held fixed")
    parser.add_argument("--scenes", type=int, default=48)
    parser.add_argument("--no-bank", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    loaded = load_model("toy", device="cpu")
    rows = tune(loaded, json.loads(args.grid), args.scenes, not args.no_bank, json.loads(args.fixed))
    for row in rows:
        things = np.nanmean([row["iou"]["text"][t] for t in WorldSpec().things])
        values = " ".join(f"{name} {value:.3f} |" for name, value in row["miou"].items())
        print(f"{values} things (text) {things:.3f} | {json.dumps(row['settings'])}")
    print(f"{len(rows)} points, {args.scenes} scenes; {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
