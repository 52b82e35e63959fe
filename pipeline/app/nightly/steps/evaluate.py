"""Stage 6, evaluate: the run's bank on the configured benchmark (runs/{run}/eval/), or the baseline's numbers when
the bank and the benchmark settings are unchanged."""

from __future__ import annotations

from pipeline.app.nightly.state import fingerprint, relative
from pipeline.app.nightly.steps.base import RunContext, StageResult


def stage_fingerprint(ctx: RunContext) -> str:
    """The bank's tensors and concepts, the model and the benchmark settings."""
    banks = (ctx.marker("banks") or {}).get("outputs", {})
    cfg = ctx.config.evaluate
    return fingerprint(banks.get("tensors"), banks.get("concepts"), ctx.config.model, cfg and cfg.model_dump())


def run(ctx: RunContext) -> StageResult:
    """Segment the benchmark with the configured segmenter on the run's bank; write results.json and report.html."""
    cfg = ctx.config.evaluate
    if cfg is None:
        return StageResult("not configured", "no 'evaluate' section")
    base = ctx.baseline_marker("evaluate")
    if base is not None and base["fingerprint"] == stage_fingerprint(ctx) and base["outcome"] != "not configured":
        message = f"bank unchanged since {ctx.baseline}: mIoU {100 * (base['counts']['miou'] or 0):.1f} % stands"
        return StageResult("reused", message, dict(base["counts"]), base["outputs"])
    from segment import segmenter as registry
    from segment.datasets import open_dataset
    from segment.eval_report import write_eval_report
    from segment.evaluate import evaluate

    bank_dir = ctx.root / ctx.marker("banks")["outputs"]["dir"]
    dataset = open_dataset(cfg.dataset, ctx.config.path(cfg.data_root), split=cfg.split)
    options = {"crf": True} if cfg.crf else {}
    try:
        segmenter = registry.create_segmenter(
            cfg.segmenter, bank=bank_dir, clip=ctx.model(), device=ctx.config.device, **options
        )
    except TypeError as error:
        raise ValueError(f"segmenter {cfg.segmenter!r} cannot run on a bank from the nightly run: {error}") from None
    result = evaluate(
        segmenter, dataset, concepts=cfg.concepts, limit=cfg.limit, batch_size=cfg.batch_size, progress=ctx.progress
    )
    json_path, _ = write_eval_report(result, ctx.run_dir / "eval")
    miou = result.to_json()["miou"]
    counts = {"images": result.images, "miou": miou, "pixel_accuracy": result.to_json()["pixel_accuracy"]}
    shown = "-" if miou is None else f"{100 * miou:.1f} %"
    message = f"mIoU {shown} on {cfg.dataset} {cfg.split} ({result.images} images, {cfg.segmenter})"
    return StageResult("ran", message, counts, {"results": relative(ctx.root, json_path)}, done=result.images)
