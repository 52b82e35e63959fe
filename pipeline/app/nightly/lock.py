"""One run at a time per data root: an OS file lock on runs/.lock (released by the OS if the holder dies)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from pipeline.app.nightly.state import runs_dir

LOCK = ".lock"
OWNER = ".lock.owner.json"


class RootLockedError(RuntimeError):
    """Another run holds the data root's lock."""


def _holder(folder: Path) -> str:
    try:
        owner = json.loads((folder / OWNER).read_text())
    except (OSError, ValueError):
        return "another process"
    return f"pid {owner.get('pid')} on {owner.get('host')} (run {owner.get('run')}, since {owner.get('since')})"


@contextlib.contextmanager
def root_lock(root: Path | str, run: str, what: str = "") -> Iterator[None]:
    """Hold the data root's lock for the block; RootLockedError at once if another run holds it."""
    folder = runs_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RootLockedError(
            f"data root {root} is locked by {_holder(folder)}; wait for that run to finish ({folder / LOCK})"
        ) from None
    try:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "run": run,
            "stages": what,
            "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        (folder / OWNER).write_text(json.dumps(owner))
        yield
    finally:
        (folder / OWNER).unlink(missing_ok=True)
        lock.release()
