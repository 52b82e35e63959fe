"""runs/{run}/manifest.json of a nightly run: config, versions, baseline; per stage counts, timings, failures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.app.nightly.config import NightlyConfig
from pipeline.app.nightly.partitions import baseline_for
from pipeline.app.nightly.state import read_json, run_dir, write_json
from pipeline.core.manifest import package_versions

MANIFEST = "manifest.json"
INTERRUPTED = "interrupted: the attempt's process died before the stage finished (killed, or its worker lost)"


def now() -> str:
    """The current UTC time, ISO 8601 to the millisecond."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def manifest_path(root: Path | str, run: str) -> Path:
    """runs/{run}/manifest.json."""
    return run_dir(root, run) / MANIFEST


def read_manifest(root: Path | str, run: str) -> dict | None:
    """The run's manifest, or None before the run started."""
    return read_json(manifest_path(root, run))


def start_run(config: NightlyConfig, run: str) -> dict:
    """Create the run's manifest on its first start (its baseline: partitions.baseline_for then); return it."""
    manifest = read_manifest(config.root, run)
    if manifest is None:
        baseline = baseline_for(config.root, run)
        manifest = {"run": run, "baseline": baseline, "started_at": now(), "status": "running", "stages": {}}
    manifest.update(config=config.to_dict(), versions=package_versions())
    write_json(manifest_path(config.root, run), manifest, sort_keys=False)
    return manifest


def _update(root: Path | str, run: str, stage: str, fields: dict) -> dict:
    manifest = read_manifest(root, run)
    if manifest is None:
        raise FileNotFoundError(f"run {run} has no manifest at {manifest_path(root, run)}")
    entry = manifest["stages"].setdefault(stage, {"attempts": 0})
    entry.update(fields)
    failures = {name: e["error"] for name, e in manifest["stages"].items() if e.get("status") == "failed"}
    manifest["failures"] = failures
    write_json(manifest_path(root, run), manifest, sort_keys=False)
    return entry


def begin_stage(root: Path | str, run: str, stage: str) -> int:
    """Record a stage's start (one more attempt); return the attempt number, 1 for the first.

    The caller holds the root's lock, so a stage still 'running' is an attempt whose process died (SIGKILL, lost
    worker): it goes into the stage's `errors` as interrupted.
    """
    manifest = read_manifest(root, run) or {"stages": {}}
    entry = manifest["stages"].get(stage, {})
    attempts = entry.get("attempts", 0) + 1
    errors = list(entry.get("errors", []))
    if entry.get("status") == "running":
        errors.append(
            {"attempt": attempts - 1, "error": INTERRUPTED, "started_at": entry.get("started_at"), "failed_at": None}
        )
    fields = {"status": "running", "attempts": attempts, "started_at": now(), "error": None, "errors": errors}
    _update(root, run, stage, fields)
    return attempts


def fail_stage(root: Path | str, run: str, stage: str, error: BaseException) -> None:
    """Record why a stage's attempt failed, as its `error` and appended to its `errors` (every failed attempt)."""
    entry = (read_manifest(root, run) or {"stages": {}})["stages"].get(stage, {})
    message, when = f"{type(error).__name__}: {error}", now()
    failed = {"attempt": entry.get("attempts", 0), "error": message, "started_at": entry.get("started_at")}
    errors = [*entry.get("errors", []), {**failed, "failed_at": when}]
    _update(root, run, stage, {"status": "failed", "error": message, "failed_at": when, "errors": errors})


def end_stage(root: Path | str, run: str, stage: str, record: dict) -> None:
    """Record a finished stage: outcome, counts, per-task counts, task failures, timings."""
    _update(root, run, stage, {"status": "done", "finished_at": now(), **record})


def finish_run(root: Path | str, run: str, status: str) -> None:
    """Mark the whole run 'done' or 'noop' and stamp its end and total stage seconds."""
    manifest = read_manifest(root, run)
    if manifest is None:
        raise FileNotFoundError(f"run {run} has no manifest at {manifest_path(root, run)}")
    manifest["status"] = status
    manifest["finished_at"] = now()
    manifest["seconds"] = round(sum(s.get("seconds", 0) for s in manifest["stages"].values()), 2)
    write_json(manifest_path(root, run), manifest, sort_keys=False)
