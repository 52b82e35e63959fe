"""Stage 3, index: add the new embedding shards to the index with build_index(incremental=True).

The index folder is shared by all runs, so the run keeps the index as it was before the stage started: a copy of
index.json (runs/{run}/index.before.json) and a hard link to trained.index (runs/{run}/index.before.trained.index).
A resumed attempt puts them back when an interrupted build had removed or replaced them: the trained index and
the finished blocks are reused exactly as an uninterrupted build would reuse them, and an interrupted retrain
starts again from the old index, so it finds the same drift, records the same reason and trains the same index.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

from pipeline.app.nightly.state import fingerprint, read_json, relative, write_json
from pipeline.app.nightly.steps.base import RunContext, StageResult

BEFORE = "index.before.json"
BEFORE_TRAINED = "index.before.trained.index"
TRAINED = "trained.index"


def index_dir(ctx: RunContext) -> Path:
    """index/{model_id}/{version}/ under the root."""
    return ctx.root / "index" / ctx.model_id / ctx.config.index.version


def embedding_dir(ctx: RunContext) -> Path:
    """embeddings/{model_id}/ under the root."""
    return ctx.root / "embeddings" / ctx.model_id


def stage_fingerprint(ctx: RunContext) -> str:
    """The finished embedding shards and the index options."""
    from pipeline.pool.index import embedding_shards

    return fingerprint(embedding_shards(embedding_dir(ctx)), ctx.config.model, ctx.config.index.model_dump())


def canary_queries(ctx: RunContext):
    """The registry's concept embeddings (q, d) float32: the recall report's and the drift check's queries."""
    from archives.prompts import concept_embeddings
    from archives.registry import load_registry, select
    from pipeline.core.text import default_template_set

    loaded = ctx.model()
    concepts = select(load_registry(ctx.config.path(ctx.config.archives.registry)), None)
    return concept_embeddings(loaded, concepts, ctx.config.archives.templates or default_template_set(loaded.ref))


def _keep(source: Path, target: Path) -> None:
    """Hard-link `source` as `target` (a copy where links are not possible), atomically."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        tmp.write_bytes(source.read_bytes())
    tmp.replace(target)


def _same(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and (os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False))


def _restore(ctx: RunContext, folder: Path) -> bool:
    """Save index.json and trained.index before the first attempt; put them back if an interrupted attempt removed
    or replaced them (a retrain under way: its trained index and blocks are dropped).

    Return False when the interrupted attempt was a retrain and no trained index was kept: the rerun trains afresh.
    """
    before, kept = ctx.run_dir / BEFORE, ctx.run_dir / BEFORE_TRAINED
    current, trained = folder / "index.json", folder / TRAINED
    if not before.is_file():
        info = read_json(current)
        if info and trained.is_file():
            _keep(trained, kept)
        write_json(before, info or {"absent": True})  # written last: it says the kept state is complete
        return True
    saved = read_json(before)
    if current.is_file() or saved.get("absent"):
        return True
    if not kept.is_file():  # a partition begun before trained indexes were kept: the old rule
        if not trained.is_file():
            return False
    elif not _same(trained, kept):  # the retrain had begun: its trained index (if any) and blocks go
        for block in (folder / "blocks").glob("*.index"):
            block.unlink()
        _keep(kept, trained)
    tmp = folder / ".index.json.restore"
    tmp.write_text(before.read_text())
    tmp.replace(current)
    return True


def run(ctx: RunContext) -> StageResult:
    """Add the shards the index lacks (retraining if the drift check fails); report what changed since the stage's
    first attempt, so a resumed attempt reports the work an interrupted one did."""
    from pipeline.app.index_options import build_options
    from pipeline.core.io import parse_size
    from pipeline.pool.index import build_index, embedding_shards
    from pipeline.pool.index_depth import deep_counts, describe_deep

    folder = index_dir(ctx)
    shards = embedding_shards(embedding_dir(ctx))
    incremental = _restore(ctx, folder)
    saved = read_json(ctx.run_dir / BEFORE)
    before = None if saved.get("absent") else saved
    info = read_json(folder / "index.json")
    if not info or info.get("shards") != shards:
        cfg = ctx.config.index
        executor = ctx.executor()
        try:
            info = build_index(
                embedding_dir(ctx),
                folder,
                canary_queries(ctx),
                executor,
                max_memory=parse_size(cfg.max_memory),
                target_recall=cfg.target_recall,
                incremental=incremental,
                max_imbalance=cfg.max_imbalance,
                progress=ctx.progress,
                options=build_options(cfg),
            )
        finally:
            executor.close()
        if not incremental:
            info["retrained_because"] = "resumed a retrain that was interrupted"
            write_json(folder / "index.json", info)
    (ctx.run_dir / BEFORE_TRAINED).unlink(missing_ok=True)  # only a resumed attempt needs it
    outputs = {"dir": relative(ctx.root, folder)}
    added = [s for s in shards if s not in set((before or {}).get("shards", []))]
    if not added:
        message = f"up to date: {info['count']} vectors in {len(shards)} shards"
        counts = {"shards": 0, "vectors": info["count"]}
        return StageResult("nothing new", message, counts, outputs, skipped=len(shards))
    counts = {
        "shards": len(added),
        "vectors": info["count"],
        "retrained": int(before is None or bool(info.get("retrained_because"))),
        "nprobe": info["nprobe"],
        "recall@10": info["recall"]["recall@10"],
    }
    counts |= deep_counts(info)  # the nprobe a deep top-k (archives) searches with, and the recall it reached
    why = f"; retrained: {info['retrained_because']}" if info.get("retrained_because") else ""
    message = (
        f"added {len(added)} shards: {info['count']} vectors as {info['factory']} (nprobe {info['nprobe']}), "
        f"recall@10 {info['recall']['recall@10']:.3f}{describe_deep(info)}{why}"
    )
    return StageResult("ran", message, counts, outputs, done=len(added), skipped=len(shards) - len(added))
