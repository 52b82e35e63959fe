"""A small data root for nightly runs: toy pool shards (some held back to arrive later), a registry, a config."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from archives.registry import Concept, save_registry


def concepts() -> list[Concept]:
    """Every class of the toy benchmark (the evaluation needs one concept per class); backgrounds as context."""
    from pipeline.toy.world import WorldSpec

    spec = WorldSpec()
    return [*(Concept(name, context=True) for name in spec.stuff), *(Concept(name) for name in spec.things)]


def make_root(
    out: Path, pool_size: int = 220, shard_size: int = 100, late: tuple[int, ...] = (2,), bench_size: int = 8
) -> Path:
    """A data root under `out`: pool shards (those in `late` moved to out/late/), benchmark, concepts.yaml and
    nightly.yaml (small k so that co-segmentation stays cheap); return the config path."""
    from pipeline.toy.export import generate_toy_world
    from pipeline.toy.world import WorldSpec

    generate_toy_world(
        out,
        WorldSpec(),
        seed=3,
        pool_size=pool_size,
        shard_size=shard_size,
        bench_size=bench_size,
        workers=1,
        progress=False,
    )
    (out / "late").mkdir()
    for shard in late:
        for path in (out / "pool").glob(f"{shard:05d}*"):
            shutil.move(path, out / "late" / path.name)
    save_registry(out / "concepts.yaml", concepts())
    config = {
        "root": ".",
        "model": "toy",
        "device": "cpu",
        "embed": {"batch_size": 64},
        "archives": {"k": 6},
        "banks": {"k": 6},
        "evaluate": {"dataset": "toy", "data_root": "benchmark", "limit": bench_size, "batch_size": 4},
    }
    (out / "nightly.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out / "nightly.yaml"


def arrive(root: Path) -> None:
    """Move the held-back shards into the pool, .tar and .parquet first and _stats.json last, as img2dataset does."""
    for path in sorted((root / "late").iterdir(), key=lambda p: p.name.endswith("_stats.json")):
        shutil.move(path, root / "pool" / path.name)
