"""What a local copy of a URL root knows about each file: the remote version it holds and the local file it wrote.

One SQLite file per cache folder, shared by every process and thread that uses the folder (a command, a serve
refresh): a row per file, keyed by its path under the bucket, with the remote tag (ETag, or size and time where a
filesystem has none), the local size and mtime after the transfer, and a flag for a file that a command deleted
locally (a tombstone: the bucket keeps it, and a later pull does not fetch it back while its tag is unchanged).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, tag TEXT NOT NULL, size INTEGER NOT NULL,
    local_size INTEGER NOT NULL, local_mtime INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)"""


@dataclass(frozen=True)
class FileRow:
    """One file of the local copy: its remote tag and size, its local (size, mtime_ns), whether it was deleted."""

    path: str
    tag: str
    size: int
    local: tuple[int, int]
    deleted: bool = False


class RemoteState:
    """The rows of one cache folder's state file; each call is its own transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60)  # a connection per call: threads never share one
        try:
            with con:
                yield con
        finally:
            con.close()

    def rows(self, prefix: str) -> dict[str, FileRow]:
        """Every row whose path is `prefix` or lies under it ('' for all)."""
        query = "SELECT path, tag, size, local_size, local_mtime, deleted FROM files"
        with self._connect() as con:
            if prefix:
                found = con.execute(
                    f"{query} WHERE path = ? OR substr(path, 1, ?) = ?", (prefix, len(prefix) + 1, prefix + "/")
                )
            else:
                found = con.execute(query)
            return {p: FileRow(p, t, s, (ls, lm), bool(d)) for p, t, s, ls, lm, d in found.fetchall()}

    def put(self, rows: Iterable[FileRow]) -> None:
        """Insert or replace `rows`."""
        with self._connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                [(r.path, r.tag, r.size, r.local[0], r.local[1], int(r.deleted)) for r in rows],
            )

    def drop(self, paths: Iterable[str]) -> None:
        """Forget the rows of `paths`."""
        with self._connect() as con:
            con.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
