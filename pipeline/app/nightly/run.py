"""One nightly run over a data root: the stages in order under the root's lock, each skipped when its done-marker
matches its inputs, recorded in runs/{run}/manifest.json."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from pipeline.app.nightly.config import NightlyConfig
from pipeline.app.nightly.faults import maybe_fault
from pipeline.app.nightly.lock import root_lock
from pipeline.app.nightly.run_manifest import begin_stage, end_stage, fail_stage, finish_run, now, start_run
from pipeline.app.nightly.state import STAGES, check_run_name, check_stages, marker_path, write_json
from pipeline.app.nightly.steps.base import RunContext, StageResult


class StageTasksFailedError(RuntimeError):
    """Some tasks of a stage still failed after their retries (they are listed in the manifest)."""


@dataclass
class RunReport:
    """What a call to run_nightly did: per stage its outcome and summary line, and whether it had been done."""

    run: str
    baseline: str | None
    outcomes: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    already_done: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def noop(self) -> bool:
        """Whether the run changed nothing: every stage had been done, or publish found no new data."""
        return len(self.already_done) == len(self.outcomes) or self.outcomes.get("publish") == "nothing new"


def _step(name: str):
    return importlib.import_module(f"pipeline.app.nightly.steps.{name}")


def _require_upstream(ctx: RunContext, name: str) -> None:
    index = STAGES.index(name)
    if index and ctx.marker(STAGES[index - 1]) is None:
        raise ValueError(f"stage {name} of run {ctx.run} needs stage {STAGES[index - 1]} to have finished first")


def run_one_stage(ctx: RunContext, name: str, echo: Callable[[str], None] = print) -> tuple[dict, bool]:
    """Run one stage unless its marker matches its inputs; return its marker and whether it had been done."""
    _require_upstream(ctx, name)
    step = _step(name)
    fp = step.stage_fingerprint(ctx)
    marker = ctx.marker(name)
    if marker is not None and marker["fingerprint"] == fp:
        echo(f"{name}: already done in run {ctx.run}: {marker['message']}")
        return marker, True
    root = ctx.root
    attempt = begin_stage(root, ctx.run, name)
    start = time.perf_counter()
    try:
        maybe_fault(name, "raise", attempt)
        result: StageResult = step.run(ctx)
        if result.failures:
            raise StageTasksFailedError(f"{len(result.failures)} tasks failed: {sorted(result.failures.items())[:3]}")
    except BaseException as error:
        fail_stage(root, ctx.run, name, error)
        raise
    maybe_fault(name, "kill", attempt)
    seconds = round(time.perf_counter() - start, 2)
    marker = {"stage": name, "run": ctx.run, "fingerprint": fp, "finished_at": now(), "seconds": seconds}
    marker.update({k: v for k, v in asdict(result).items() if k in ("outcome", "message", "counts", "outputs")})
    record = {k: v for k, v in asdict(result).items() if k != "outputs"}
    record["config"] = _section(ctx.config, name)
    end_stage(root, ctx.run, name, {**record, "seconds": seconds})
    write_json(marker_path(root, ctx.run, name), marker)  # the done-marker goes last
    if name == "publish":
        finish_run(root, ctx.run, "noop" if result.outcome == "nothing new" else "done")
    echo(f"{name}: {result.message} ({seconds:.1f} s)")
    return marker, False


def _section(config: NightlyConfig, stage: str) -> dict | None:
    """The config section of a stage (sections are named after stages), or None."""
    value = getattr(config, stage, None)
    return value.model_dump() if value is not None else None


def run_nightly(
    config: NightlyConfig,
    run: str,
    stages: list[str] | tuple[str, ...] | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> RunReport:
    """Run `stages` (default: all, in order) of run partition `run` under the data root's lock."""
    check_run_name(run)
    names = check_stages(list(stages) if stages else list(STAGES))
    start = time.perf_counter()
    with root_lock(config.root, run, ",".join(names)):
        manifest = start_run(config, run)
        ctx = RunContext(config, run, manifest["baseline"], scheduler, progress)
        report = RunReport(run, ctx.baseline)
        for name in names:
            marker, was_done = run_one_stage(ctx, name, echo)
            report.outcomes[name] = marker["outcome"]
            report.messages[name] = marker["message"]
            if was_done:
                report.already_done.append(name)
    report.seconds = round(time.perf_counter() - start, 2)
    return report
