"""What every nightly stage shares: the run context (config, run, baseline, model, executor) and its result."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.app.nightly.config import NightlyConfig
from pipeline.app.nightly.state import read_marker, run_dir


@functools.lru_cache(maxsize=1)
def _load_model(model: str, device: str | None) -> Any:
    from pipeline.core.models import load_model

    return load_model(model, device=device)


@dataclass
class StageResult:
    """One stage's outcome ('ran', 'nothing new', 'reused', 'not configured'), summary line, counts and outputs."""

    outcome: str
    message: str
    counts: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # paths relative to the root, content fingerprints
    per_task: dict[str, dict] = field(default_factory=dict)
    done: int = 0
    skipped: int = 0
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class RunContext:
    """A nightly run in progress: its config and partition, the baseline run it compares with, shared state."""

    config: NightlyConfig
    run: str
    baseline: str | None = None
    scheduler: str | None = None
    progress: bool = True

    @property
    def root(self) -> Path:
        """The data root."""
        return Path(self.config.root)

    @property
    def run_dir(self) -> Path:
        """runs/{run}/: this run's partition."""
        return run_dir(self.root, self.run)

    @property
    def pool(self) -> Path:
        """The img2dataset pool folder."""
        return self.config.path(self.config.pool)

    def marker(self, stage: str) -> dict | None:
        """This run's done-marker of `stage`, or None."""
        return read_marker(self.root, self.run, stage)

    def baseline_marker(self, stage: str) -> dict | None:
        """The baseline run's done-marker of `stage`, or None (first run, or not finished there)."""
        return read_marker(self.root, self.baseline, stage)

    def model(self) -> Any:
        """The run's CLIP, loaded once per process."""
        return _load_model(self.config.model, self.config.device)

    @property
    def model_id(self) -> str:
        """The folder name of the run's model (without loading it)."""
        from pipeline.core.models import ModelRef

        return ModelRef.parse(self.config.model).model_id

    def executor(self) -> Any:
        """A fresh executor for a stage's tasks (the caller closes it)."""
        from pipeline.core.executors import make_executor

        ex = self.config.executor
        scheduler = self.scheduler or ex.scheduler
        return make_executor("dask" if scheduler else ex.kind, scheduler, ex.workers)
