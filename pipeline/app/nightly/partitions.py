"""The order of run partitions: dated runs (runs/2026-11-22/) follow their dates, not the order they were started in.

A dated run's baseline is the newest finished dated partition before its own date, and a dated run older than the
one runs/latest.json names does not move the pointer (a backfill). Runs with other names (`--run smoke`) keep the
order they are started in: their baseline is the run `latest` names, and they publish.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.app.nightly.state import marker_path, read_latest, runs_dir

DATED = re.compile(r"^\d{4}-\d{2}-\d{2}")  # ISO dates (and date-times) sort as text in time order


def is_dated(run: str) -> bool:
    """Whether a run partition is named by its date, YYYY-MM-DD (optionally followed by more, e.g. a time)."""
    return bool(DATED.match(run))


def finished_runs(root: Path | str) -> list[str]:
    """The partitions whose publish stage finished (published, a no-op, or a backfill), sorted by name."""
    folder = runs_dir(root)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and marker_path(root, p.name, "publish").is_file())


def baseline_for(root: Path | str, run: str) -> str | None:
    """The run that `run` compares with: for a dated run the newest finished dated partition before its date, else
    the run runs/latest.json names; None for the first."""
    if is_dated(run):
        earlier = [r for r in finished_runs(root) if is_dated(r) and r < run]
        return earlier[-1] if earlier else None
    latest = read_latest(root)
    return latest["run"] if latest and latest.get("run") != run else None


def newer_published(root: Path | str, run: str) -> str | None:
    """The dated run runs/latest.json names when it is newer than dated run `run` (publishing would move the pointer
    backwards), else None."""
    latest = read_latest(root)
    published = latest.get("run") if latest else None
    if published and is_dated(run) and is_dated(published) and published > run:
        return published
    return None
