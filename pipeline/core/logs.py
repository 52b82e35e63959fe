"""Diagnostics through the logging module (stderr, one line each; results go to stdout) and per-task log files."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOGGER = "coarchive"
_CONSOLE = "coarchive-console"  # the name of the stderr handler setup_logging owns


def get_logger(name: str) -> logging.Logger:
    """The logger of a module, under coarchive's ('coarchive.pipeline.pool.embed' for 'pipeline.pool.embed')."""
    return logging.getLogger(f"{LOGGER}.{name}")


def setup_logging(verbose: bool = False) -> None:
    """Send coarchive's diagnostics to the current stderr: notes and warnings, and with `verbose` debug lines too.

    Called once per command; calling it again replaces its handler (tests call `main` many times).
    """
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if h.get_name() == _CONSOLE]:
        logger.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.set_name(_CONSOLE)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    detailed = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    console.setFormatter(logging.Formatter(detailed if verbose else "%(message)s"))
    logger.addHandler(console)
    logger.setLevel(logging.DEBUG)  # handlers filter: the console by verbosity, task log files keep everything
    logger.propagate = False


@contextmanager
def task_log(folder: Path | str | None, task_id: str) -> Iterator[logging.Logger]:
    """While a task runs, everything coarchive logs goes (also) to FOLDER/TASK_ID.log, as datatrove keeps task logs.

    With `folder` None nothing is written. The file is appended to, so a retried task keeps every attempt.
    """
    logger = logging.getLogger(LOGGER)
    if folder is None:
        yield logger
        return
    path = Path(folder) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', task_id)}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    level = logger.level
    if logger.getEffectiveLevel() > logging.DEBUG:  # a Dask worker never ran setup_logging
        logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(level)
