"""Test helpers that write webdataset shard members: encoded images and plain tar files."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """The bytes of `image` saved in format `fmt` (JPEG, PNG, WEBP, ...) with PIL's save options."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """Write a tar at `path` holding (name, data) members in order; return the path."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
