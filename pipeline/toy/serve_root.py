"""A small toy-world data root (pool, embeddings, index, archives, bank, manifest) for tests and benches."""

from __future__ import annotations

import time
from pathlib import Path

RUN = "toy"


def build_toy_root(out: Path | str, pool_size: int = 400, seed: int = 0, bench_size: int = 4, bank_k: int = 8) -> Path:
    """Run the flow on a fresh toy world under `out` (the data root) and return it; a finished root is reused."""
    from archives.registry import Concept, save_registry
    from archives.retrieve import build_archives, run_dir
    from pipeline.core.executors import LocalExecutor
    from pipeline.core.manifest import record_stage
    from pipeline.core.models import load_model
    from pipeline.core.stage import run_stage
    from pipeline.pool.embed import EmbedStage
    from pipeline.pool.index import build_index
    from pipeline.toy.export import generate_toy_world
    from pipeline.toy.quality import text_embeddings
    from pipeline.toy.world import WorldSpec
    from segment.bank_from_archives import bank_from_run

    root = Path(out)
    loaded = load_model("toy", device="cpu")
    bank_dir = root / "banks" / loaded.ref.model_id / RUN
    if (bank_dir / "bank.json").is_file():
        return root
    spec = WorldSpec()
    start = time.perf_counter()
    generate_toy_world(
        root, spec, seed=seed, pool_size=pool_size, shard_size=200, bench_size=bench_size, workers=1, progress=False
    )
    stage = EmbedStage(str(root / "pool"), str(root), loaded.ref, batch_size=128)
    report = run_stage(stage, LocalExecutor(), progress=False)
    record_stage(str(root), RUN, report, {"model": "toy", "pool_size": pool_size}, time.perf_counter() - start)
    embeddings = root / "embeddings" / loaded.ref.model_id
    canary = text_embeddings(loaded, list(spec.classes)).numpy()  # (q, d) queries for the recall report
    build_index(embeddings, root / "index" / loaded.ref.model_id / "v1", canary, LocalExecutor(), progress=False)
    concepts = [Concept(name, context=True) for name in spec.stuff] + [Concept(name) for name in spec.things]
    save_registry(root / "concepts.yaml", concepts)
    build_archives(root, loaded, concepts, RUN, "toy", k=16, pool=root / "pool")
    bank, _ = bank_from_run(loaded, run_dir(root, loaded.ref.model_id, RUN), concepts=list(spec.classes), k=bank_k)
    bank.save(bank_dir)
    return root
