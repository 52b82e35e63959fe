"""Stage 2, embed: the pool shards that have arrived completely (their _stats.json exists) and are not embedded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.app.nightly.state import fingerprint, read_json, write_json
from pipeline.app.nightly.steps.base import RunContext, StageResult
from pipeline.pool.embed import EmbedStage, EmbedTask

BEFORE = "embed.before.json"


@dataclass
class ArrivedShardsEmbedStage(EmbedStage):
    """EmbedStage over complete shards only: img2dataset writes a shard's _stats.json last."""

    def plan(self) -> list[EmbedTask]:
        """The shards of EmbedStage.plan whose _stats.json exists."""
        return [t for t in super().plan() if (Path(self.pool) / f"{t.shard:05d}_stats.json").is_file()]


def arrived_shards(pool: Path) -> list[str]:
    """Names of the pool's complete shards."""
    return sorted(p.name for p in pool.glob("*_stats.json") if p.name.split("_")[0].isdigit())


def embedded_shards(stage: EmbedStage) -> list[str]:
    """Names of the shards that have embeddings (their parquet, written last)."""
    return sorted(p.stem for p in Path(stage.out_dir).glob("*.parquet") if p.stem.isdigit())


def stage_fingerprint(ctx: RunContext) -> str:
    """The complete pool shards, the model and the embed options."""
    return fingerprint(arrived_shards(ctx.pool), ctx.config.model, ctx.config.embed.model_dump())


def run(ctx: RunContext) -> StageResult:
    """Embed every complete shard without embeddings, on the configured executor, with bounded retries."""
    from pipeline.core.executors import LocalExecutor
    from pipeline.core.models import ModelRef
    from pipeline.core.stage import run_stage

    if not ctx.pool.is_dir():
        raise FileNotFoundError(f"pool folder not found: {ctx.pool}")
    cfg = ctx.config.embed
    stage = ArrivedShardsEmbedStage(
        str(ctx.pool),
        str(ctx.root),
        ModelRef.parse(ctx.config.model),
        batch_size=cfg.batch_size,
        decode_threads=cfg.decode_threads,
        device=ctx.config.device,
    )
    before = read_json(ctx.run_dir / BEFORE)  # the shards embedded when the stage's first attempt began
    if before is None:
        before = embedded_shards(stage)
        write_json(ctx.run_dir / BEFORE, before)
    if all(stage.is_done(task) for task in stage.plan()):  # no cluster started for nothing
        executor = LocalExecutor()
    else:
        executor = ctx.executor()
    try:
        logs = ctx.run_dir / "logs" / "embed"  # a log file per shard, every attempt appended
        report = run_stage(stage, executor, retries=ctx.config.retries, progress=ctx.progress, log_dir=logs)
    finally:
        executor.close()
    new = sorted(set(embedded_shards(stage)) - set(before))
    totals = report.totals()
    counts = {"shards": len(new), "already embedded": len(before), **totals}
    return StageResult(
        "ran" if new else "nothing new",
        f"{len(new)} new shards embedded ({totals.get('embedded', 0)} images in this attempt; "
        f"{len(before)} shards embedded before)",
        counts,
        per_task=report.stats,
        done=len(report.done),
        skipped=len(report.skipped),
        failures=report.failed,
    )
