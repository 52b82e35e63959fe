"""Ingest each new URL list exactly once: download into a staging folder, then move its shards into the pool.

Shards are numbered after the pool's last one (img2dataset's 'extend' mode), so ids and keys stay unique. The
start number is recorded before the download, so a list interrupted anywhere is redone from the same number:
during the download the staging folder is discarded and the download restarted; during the move into the pool the
move is finished. ingest/{name}.json, written last, marks the list as ingested.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
from pathlib import Path

from pipeline.app.nightly.config import IngestConfig
from pipeline.app.nightly.state import read_json, write_json

SHARD_FILE = re.compile(r"^(\d+)(\.tar|\.parquet|_stats\.json)$")
COMPLETE = ".complete"


def ledger_dir(root: Path) -> Path:
    """ingest/ under the data root: one JSON per ingested URL list, plus in-progress staging folders."""
    return root / "ingest"


def list_name(root: Path, url_list: Path) -> str:
    """A URL list's ledger name: its path under the root (or its absolute path), as one safe file name."""
    try:
        text = url_list.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        text = url_list.resolve().as_posix()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def find_lists(root: Path, pattern: str) -> list[Path]:
    """The URL list files matching `pattern` (relative to the root, or absolute), sorted by path."""
    full = pattern if Path(pattern).is_absolute() else str(root / pattern)
    return sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())


def ledger_entry(root: Path, url_list: Path) -> dict | None:
    """The list's ledger entry (run, shards, counts), or None if it has not been ingested."""
    return read_json(ledger_dir(root) / f"{list_name(root, url_list)}.json")


def next_shard(pool: Path) -> int:
    """One past the highest shard number of any file in the pool (0 for an empty or missing pool)."""
    numbers = [int(m.group(1)) for p in pool.glob("*") if (m := SHARD_FILE.match(p.name))] if pool.is_dir() else []
    return max(numbers, default=-1) + 1


def _seed(staging: Path, start: int) -> None:
    """Make img2dataset's 'extend' mode start at shard `start`: an empty stats file for shard start - 1."""
    if start > 0:
        stats = {"count": 0, "successes": 0, "failed_to_download": 0, "failed_to_resize": 0}
        stats.update(start_time=0.0, end_time=0.0, status_dict={})
        (staging / f"{start - 1:05d}_stats.json").write_text(json.dumps(stats))


def _move_shards(staging: Path, pool: Path, start: int) -> list[int]:
    """Move the staged shards (numbers >= start) into the pool, .tar and .parquet first, _stats.json last; return
    the list's shard numbers."""
    pool.mkdir(parents=True, exist_ok=True)
    staged = [(int(m.group(1)), m.group(2), p) for p in staging.iterdir() if (m := SHARD_FILE.match(p.name))]
    for _, _, path in sorted((s for s in staged if s[0] >= start), key=lambda s: (s[1] == "_stats.json", s[0])):
        os.replace(path, pool / path.name)
    return [n for n in range(start, next_shard(pool)) if (pool / f"{n:05d}_stats.json").is_file()]


def ingest_list(root: Path, pool: Path, url_list: Path, options: IngestConfig, run: str) -> dict:
    """Ingest one URL list into the pool in run `run` (resuming an interrupted attempt); return its ledger entry."""
    from pipeline.pool.ingest import ingest

    name = list_name(root, url_list)
    ledger = ledger_dir(root) / f"{name}.json"
    if ledger.is_file():
        return json.loads(ledger.read_text())
    start_file = ledger_dir(root) / f"{name}.start.json"
    staging = ledger_dir(root) / f"{name}.staging"
    start = (read_json(start_file) or {}).get("start")
    if start is None:
        start = next_shard(pool)
        write_json(start_file, {"list": str(url_list), "start": start})
    if not (staging / COMPLETE).is_file():
        shutil.rmtree(staging, ignore_errors=True)  # an interrupted download: redo the whole list
        staging.mkdir(parents=True)
        _seed(staging, start)
        ingest(
            str(url_list),
            str(staging),
            input_format=options.input_format,
            url_col=options.url_col,
            caption_col=options.caption_col,
            image_size=options.image_size,
            shard_size=options.shard_size,
            processes=options.processes,
            threads=options.threads,
            timeout=options.timeout,
            incremental_mode="extend",
        )
        (staging / COMPLETE).write_text("")
    shards = _move_shards(staging, pool, start)
    stats = [json.loads((pool / f"{n:05d}_stats.json").read_text()) for n in shards]
    entry = {
        "list": str(url_list),
        "run": run,
        "shards": shards,
        "count": sum(int(x.get("count", 0)) for x in stats),
        "successes": sum(int(x.get("successes", 0)) for x in stats),
    }
    write_json(ledger, entry)
    shutil.rmtree(staging, ignore_errors=True)
    start_file.unlink(missing_ok=True)
    return entry
