"""Stages: plan tasks, skip the finished ones, run the rest on an executor with bounded retries, report failures."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.core.executors import Executor
from pipeline.core.logs import task_log


class Stage(ABC):
    """A step of the flow that reads files and writes files, split into independent, idempotent tasks."""

    name: str = "stage"

    @abstractmethod
    def plan(self) -> list[Any]:
        """All tasks of the stage (small, picklable)."""

    @abstractmethod
    def is_done(self, task: Any) -> bool:
        """Whether the task's outputs are complete (its done-marker exists)."""

    @abstractmethod
    def run_task(self, task: Any) -> dict:
        """Do one task, writing its outputs atomically and its done-marker last; return its counts."""

    def task_id(self, task: Any) -> str:
        """A short name of the task for reports."""
        return str(task)


@dataclass
class StageReport:
    """What a stage run did: finished, skipped and failed tasks, and the per-task counts."""

    stage: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # task id -> last error
    stats: dict[str, dict] = field(default_factory=dict)  # task id -> counts

    def totals(self) -> dict[str, int]:
        """Counts summed over tasks (numbers only)."""
        out: dict[str, int] = {}
        for counts in self.stats.values():
            for key, value in counts.items():
                if isinstance(value, (int, float)):
                    out[key] = out.get(key, 0) + value
        return out


class _TaskRunner:
    """Picklable callable shipped to workers: runs one task of one stage, logging it to its own file if asked."""

    def __init__(self, stage: Stage, log_dir: str | None = None) -> None:
        self.stage = stage
        self.log_dir = log_dir

    def __call__(self, task: Any) -> dict:
        task_id = self.stage.task_id(task)
        with task_log(self.log_dir, task_id) as log:
            log.debug("%s task %s started", self.stage.name, task_id)
            try:
                counts = self.stage.run_task(task)
            except Exception:
                log.exception("%s task %s failed", self.stage.name, task_id)
                raise
            log.debug("%s task %s done: %s", self.stage.name, task_id, counts)
            return counts


def run_stage(
    stage: Stage, executor: Executor, retries: int = 2, progress: bool = True, log_dir: Path | str | None = None
) -> StageReport:
    """Run the stage's unfinished tasks; retry failures up to `retries` times; record what still fails.

    With `log_dir`, each task's diagnostics (start, end, a failure's traceback, every attempt) go to
    LOG_DIR/TASK.log, written by whichever worker ran it.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    report = StageReport(stage.name)
    todo = []
    for task in stage.plan():
        if stage.is_done(task):
            report.skipped.append(stage.task_id(task))
        else:
            todo.append(task)
    runner = _TaskRunner(stage, None if log_dir is None else str(log_dir))
    bar = tqdm(total=len(todo), desc=stage.name, unit="task", disable=not progress)
    for _attempt in range(retries + 1):
        if not todo:
            break
        again = []
        for task, result in executor.map_unordered(runner, todo):
            if isinstance(result, Exception):
                report.failed[stage.task_id(task)] = f"{type(result).__name__}: {result}"
                again.append(task)
            else:
                report.failed.pop(stage.task_id(task), None)
                report.done.append(stage.task_id(task))
                report.stats[stage.task_id(task)] = result
                bar.update()
        todo = again
    bar.close()
    return report
