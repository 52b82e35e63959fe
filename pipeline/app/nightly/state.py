"""A run partition on disk: runs/{run}/ with its stage markers, the `latest` pointer, fingerprints, JSON files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pipeline.core.io import atomic_path

STAGES = ("ingest", "embed", "index", "archives", "banks", "evaluate", "publish")
LATEST = "latest.json"
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
QUIET_OUTCOMES = ("nothing new", "reused", "not configured")  # outcomes that changed nothing on disk


def check_run_name(run: str) -> str:
    """The run partition name, or ValueError if it is not a safe folder name such as 2026-11-22."""
    if not isinstance(run, str) or not RUN_NAME.match(run) or run == LATEST:
        raise ValueError(f"bad run name {run!r}; use a date such as 2026-11-22 (letters, digits, '.', '_', '-')")
    return run


def check_stages(names: list[str] | tuple[str, ...]) -> list[str]:
    """The stage names in run order; ValueError naming an unknown one."""
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; stages: {', '.join(STAGES)}")
    return [s for s in STAGES if s in names]


def runs_dir(root: Path | str) -> Path:
    """runs/ under the data root."""
    return Path(root) / "runs"


def run_dir(root: Path | str, run: str) -> Path:
    """runs/{run}/ under the data root: the run's partition."""
    return runs_dir(root) / run


def read_json(path: Path) -> Any:
    """A JSON file's content, or None if it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, data: Any, sort_keys: bool = True) -> None:
    """Write JSON under a temporary name and os.replace it into place."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")


def marker_path(root: Path | str, run: str, stage: str) -> Path:
    """runs/{run}/stages/{stage}.json: the stage's done-marker, written last."""
    return run_dir(root, run) / "stages" / f"{stage}.json"


def read_marker(root: Path | str, run: str | None, stage: str) -> dict | None:
    """A finished stage's marker in run `run`, or None."""
    return None if run is None else read_json(marker_path(root, run, stage))


def read_latest(root: Path | str) -> dict | None:
    """The published pointer runs/latest.json, or None before the first publish."""
    return read_json(runs_dir(root) / LATEST)


def fingerprint(*parts: Any) -> str:
    """A short sha256 of JSON-serialisable parts (keys sorted): equal inputs, equal fingerprint."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def relative(root: Path | str, path: Path | str) -> str:
    """`path` relative to the data root (as stored in markers and the pointer, so a root can be moved)."""
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
