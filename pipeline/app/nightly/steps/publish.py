"""Stage 7, publish: point runs/latest.json at this run (temporary file, then os.replace), unless nothing changed or
latest already names a newer dated run (a backfill never moves the pointer backwards)."""

from __future__ import annotations

from pipeline.app.nightly.partitions import newer_published
from pipeline.app.nightly.run_manifest import manifest_path, now
from pipeline.app.nightly.state import (
    LATEST,
    QUIET_OUTCOMES,
    STAGES,
    fingerprint,
    read_latest,
    relative,
    runs_dir,
    write_json,
)
from pipeline.app.nightly.steps.base import RunContext, StageResult


def _markers(ctx: RunContext) -> dict[str, dict]:
    return {s: ctx.marker(s) or {} for s in STAGES[:-1]}


def stage_fingerprint(ctx: RunContext) -> str:
    """Every earlier stage's fingerprint."""
    return fingerprint({s: m.get("fingerprint") for s, m in _markers(ctx).items()})


def run(ctx: RunContext) -> StageResult:
    """Write the pointer: run, index, archives, bank, evaluation and manifest paths relative to the root."""
    markers = _markers(ctx)
    latest = (read_latest(ctx.root) or {}).get("run")
    if ctx.baseline is not None and all(m.get("outcome") in QUIET_OUTCOMES for m in markers.values()):
        message = f"no new data since {ctx.baseline}; nothing to do (latest stays {latest or ctx.baseline})"
        return StageResult("nothing new", message, {"published": 0}, {"latest": latest or ctx.baseline})
    newer = newer_published(ctx.root, ctx.run)
    if newer is not None:
        message = (
            f"runs/{LATEST} stays {newer}, newer than this run (a backfill); outputs kept in {ctx.run}'s partition"
        )
        return StageResult("not published", message, {"published": 0}, {"latest": newer})
    outputs = {s: m.get("outputs", {}) for s, m in markers.items()}
    pointer = {
        "run": ctx.run,
        "published_at": now(),
        "model": ctx.config.model,
        "model_id": ctx.model_id,
        "index": outputs["index"].get("dir"),
        "archives": outputs["archives"].get("dir"),
        "bank": outputs["banks"].get("dir"),
        "eval": outputs["evaluate"].get("results"),
        "miou": markers["evaluate"].get("counts", {}).get("miou"),
        "manifest": relative(ctx.root, manifest_path(ctx.root, ctx.run)),
    }
    write_json(runs_dir(ctx.root) / LATEST, pointer)
    return StageResult("ran", f"runs/{LATEST} -> {ctx.run}", {"published": 1}, {"latest": ctx.run})
