"""Stage 5, banks: the run's segment bank in banks/{model_id}/{run}/, co-segmenting only the concepts whose archive
changed since the baseline run; the baseline's bank itself when none did."""

from __future__ import annotations

from pipeline.app.nightly.state import file_digest, fingerprint, relative
from pipeline.app.nightly.steps.base import RunContext, StageResult

TENSORS = "bank.safetensors"


def stage_fingerprint(ctx: RunContext) -> str:
    """The archives stage's fingerprint and output, the baseline, and the bank options."""
    archives = ctx.marker("archives") or {}
    return fingerprint(
        archives.get("fingerprint"), archives.get("outputs"), ctx.baseline, ctx.config.banks.model_dump()
    )


def run(ctx: RunContext) -> StageResult:
    """Compare each concept's archive with the baseline's; co-segment the changed ones; merge and save the bank."""
    from archives.archive import list_archives
    from pipeline.app.nightly.bank_reuse import concept_fingerprint, concepts_to_rebuild, merge_banks
    from segment.bank import SegmentBank
    from segment.bank_from_archives import bank_from_run

    cfg = ctx.config.banks
    archive_dir = ctx.root / ctx.marker("archives")["outputs"]["dir"]
    archives = list_archives(archive_dir)
    fps = {a.concept: concept_fingerprint(a, cfg) for a in archives}
    base = ctx.baseline_marker("banks")
    base_dir = ctx.root / base["outputs"]["dir"] if base else None
    base_ok = base_dir is not None and (base_dir / TENSORS).is_file()
    if base_ok and base["outputs"]["concepts"] == fps:
        outputs = base["outputs"]
        message = f"no archive changed since {ctx.baseline}: keeping {outputs['dir']}"
        return StageResult("reused", message, {"concepts": len(fps), "rebuilt": 0, "reused": len(fps)}, outputs)
    old = base["outputs"]["concepts"] if base_ok else {}
    changed = {c for c, fp in fps.items() if old.get(c) != fp}
    names = concepts_to_rebuild(archives, changed, cfg.ce)
    bank, images = bank_from_run(
        ctx.model(),
        archive_dir,
        pool=ctx.pool,
        encoder=cfg.encoder,
        lgc=cfg.lgc,
        ce=cfg.ce,
        concepts=names,
        k=cfg.k,
        progress=ctx.progress,
    )
    if len(names) < len(archives):
        bank = merge_banks(archives, bank, SegmentBank.load(base_dir), ctx.baseline)
    out = ctx.root / "banks" / ctx.model_id / ctx.run
    bank.save(out)
    counts = {"concepts": len(archives), "changed": len(changed), "rebuilt": len(names), "images": images}
    counts["reused"] = len(archives) - len(names)
    outputs = {"dir": relative(ctx.root, out), "concepts": fps, "rebuilt": names, "tensors": file_digest(out / TENSORS)}
    message = (
        f"{len(changed)} of {len(archives)} archives changed: co-segmented {len(names)} concepts ({images} images), "
        f"kept {counts['reused']} rows; bank in {outputs['dir']}"
    )
    return StageResult("ran", message, counts, outputs, done=len(names), skipped=counts["reused"])
