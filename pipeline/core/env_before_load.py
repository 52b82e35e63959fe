"""Environment variables a native library reads once, when it loads: set them before it is imported, never over
the user's own choice (OpenMP's wait policy for torch, OpenBLAS's kernel for faiss)."""

from __future__ import annotations

import os
import sys

from pipeline.core.logs import get_logger

log = get_logger(__name__)


def set_before_load(variable: str, value: str | None, library: str, effect: str) -> bool:
    """Set `variable` to `value` for this process and its children unless the user set it (or `value` is None);
    return whether this process's `library` follows it (False when it was set already, or `library` is loaded)."""
    if variable in os.environ:
        log.debug(f"{variable}={os.environ[variable]} as given")
        return False
    if value is None:
        return False
    os.environ[variable] = value  # children (Dask workers, loader processes) read it when they start
    if library in sys.modules:
        log.debug(f"{variable}={value} for child processes only: {library} was loaded before it was set")
        return False
    log.debug(f"{variable}={value}: {effect}")
    return True
