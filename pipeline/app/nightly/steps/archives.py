"""Stage 4, archives: one archive per registry concept in archives/{model_id}/{run}/, or the baseline's when the
index, the registry and the options are all unchanged."""

from __future__ import annotations

from pipeline.app.nightly.state import file_digest, fingerprint, relative
from pipeline.app.nightly.steps.base import RunContext, StageResult
from pipeline.app.nightly.steps.index import index_dir


def stage_fingerprint(ctx: RunContext) -> str:
    """The index (its index.json), the registry file, the model and the archive options."""
    registry = ctx.config.path(ctx.config.archives.registry)
    index_json = index_dir(ctx) / "index.json"
    if not index_json.is_file():
        raise FileNotFoundError(f"no index at {index_dir(ctx)}; the index stage has not finished")
    return fingerprint(
        file_digest(index_json),
        file_digest(registry),
        ctx.config.model,
        ctx.config.pool,
        ctx.config.archives.model_dump(),
    )


def run(ctx: RunContext) -> StageResult:
    """Retrieve every registry concept in one batched search and write the run's archives."""
    from archives.registry import load_registry, select
    from archives.retrieve import build_archives, run_dir
    from pipeline.core.text import default_template_set

    base = ctx.baseline_marker("archives")
    if base is not None and base["fingerprint"] == stage_fingerprint(ctx):
        outputs = base["outputs"]
        counts = {"concepts": base["counts"].get("concepts", 0), "built": 0}
        message = f"index and registry unchanged since {ctx.baseline}: keeping {outputs['dir']}"
        return StageResult("reused", message, counts, outputs)
    cfg = ctx.config.archives
    loaded = ctx.model()
    concepts = select(load_registry(ctx.config.path(cfg.registry)), None)
    results = build_archives(
        ctx.root,
        loaded,
        concepts,
        ctx.run,
        cfg.templates or default_template_set(loaded.ref),
        version=ctx.config.index.version,
        k=cfg.k,
        dedup_threshold=cfg.dedup_threshold,
        pool=ctx.pool,
        images=cfg.images,
        progress=ctx.progress,
    )
    folder = run_dir(ctx.root, ctx.model_id, ctx.run)
    weak = [r.concept for r in results if r.weak]
    counts = {"concepts": len(results), "built": len(results), "items": sum(r.items for r in results)}
    counts["weak"] = len(weak)
    per_task = {r.slug: {"items": r.items, "duplicates_removed": r.duplicates_removed} for r in results}
    message = f"{len(results)} archives in {relative(ctx.root, folder)}" + (f" ({len(weak)} weak)" if weak else "")
    outputs = {"dir": relative(ctx.root, folder), "run": ctx.run}
    return StageResult("ran", message, counts, outputs, per_task=per_task, done=len(results))
