"""Stage 1, ingest: every URL list that arrived under the configured glob and is not in the ledger yet."""

from __future__ import annotations

from tqdm import tqdm

from pipeline.app.nightly.state import fingerprint
from pipeline.app.nightly.steps.base import RunContext, StageResult
from pipeline.app.nightly.url_lists import find_lists, ingest_list, ledger_entry, list_name


def stage_fingerprint(ctx: RunContext) -> str:
    """The URL lists present (path, size, mtime) and the ingest options."""
    cfg = ctx.config.ingest
    if cfg is None:
        return fingerprint("not configured")
    lists = find_lists(ctx.root, cfg.urls)
    return fingerprint([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in lists], cfg.model_dump())


def run(ctx: RunContext) -> StageResult:
    """Ingest the new URL lists one after another, each into fresh shards at the end of the pool."""
    cfg = ctx.config.ingest
    if cfg is None:
        return StageResult("not configured", "no 'ingest' section; new shards are taken from the pool as they are")
    lists = find_lists(ctx.root, cfg.urls)
    entries = {list_name(ctx.root, p): ledger_entry(ctx.root, p) for p in lists}
    todo = [p for p in lists if entries[list_name(ctx.root, p)] is None]
    for url_list in tqdm(todo, desc="ingest", unit="list", disable=not ctx.progress):
        entries[list_name(ctx.root, url_list)] = ingest_list(ctx.root, ctx.pool, url_list, cfg, ctx.run)
    mine = {k: e for k, e in entries.items() if e.get("run") == ctx.run}  # this run's, earlier attempts included
    counts = {
        "lists": len(mine),
        "shards": sum(len(e["shards"]) for e in mine.values()),
        "images": sum(e["successes"] for e in mine.values()),
        "failed": sum(e["count"] - e["successes"] for e in mine.values()),
    }
    if not mine:
        message = f"no new URL lists ({len(lists)} already ingested)"
        return StageResult("nothing new", message, counts, skipped=len(lists))
    message = (
        f"{counts['lists']} new URL lists -> {counts['shards']} shards, {counts['images']} images "
        f"({counts['failed']} failed)"
    )
    tasks = {k: {"shards": len(v["shards"]), "images": v["successes"]} for k, v in mine.items()}
    return StageResult("ran", message, counts, per_task=tasks, done=len(todo), skipped=len(lists) - len(todo))
