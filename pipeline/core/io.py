"""Atomic file writes: everything is written under a temporary name and renamed into place."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import fsspec


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` if the block succeeds, else delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomically(url: str, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file at any fsspec URL through `write(binary file)` under `URL.tmp`, then rename it into place."""
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(f"{path}.tmp", "wb") as f:
        write(f)
    fs.mv(f"{path}.tmp", path)


def parse_size(text: str) -> int:
    """Bytes of a size such as '512M', '4G', '2GB' or '1048576'; ValueError naming a bad one."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    text = text.strip().upper().removesuffix("B")
    try:
        return int(float(text[:-1]) * units[text[-1]]) if text and text[-1] in units else int(text)
    except ValueError:
        raise ValueError(f"bad memory size {text!r}; use e.g. 512M or 4G") from None
