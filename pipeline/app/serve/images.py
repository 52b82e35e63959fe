"""Thumbnails for the service: image bytes read from pool shards and archive tars by member offset, cached."""

from __future__ import annotations

import base64
import functools
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core.shard_reader import IMAGE_SUFFIXES, decode_image
from pipeline.pool.embed import split_id

THUMB_SIZE = 96


@functools.lru_cache(maxsize=256)
def tar_members(path: Path, mtime: float) -> dict[str, tuple[int, int]]:
    """Image members of a tar by name without suffix -> (data offset, size); cached per file version."""
    out = {}
    with tarfile.open(path) as tar:
        for member in tar:
            stem, _, suffix = member.name.rpartition(".")
            if member.isfile() and suffix.lower() in IMAGE_SUFFIXES:
                out[stem] = (member.offset_data, member.size)
    return out


def read_member(path: Path, stem: str) -> bytes | None:
    """The bytes of one image member of a tar (by name without suffix), or None if absent or unreadable."""
    try:
        where = tar_members(path, path.stat().st_mtime).get(stem)
        if where is None:
            return None
        with open(path, "rb") as f:
            f.seek(where[0])
            return f.read(where[1])
    except (OSError, tarfile.TarError):
        return None


def thumbnail_uri(data: bytes | None, size: int = THUMB_SIZE) -> str | None:
    """A JPEG data URI of the image bytes fitted into size x size, or None for bytes that do not decode."""
    image, _ = decode_image(data)
    if image is None:
        return None
    picture = Image.fromarray(image)
    picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def png_uri(image: np.ndarray) -> str:
    """An (H, W, 3) uint8 image as a PNG data URI (lossless, for masks)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


class Thumbnails:
    """Thumbnails of pool samples (by id and key) and archive items (by rank and key), with an LRU per process."""

    def __init__(self, pool: Path, size: int = THUMB_SIZE, cached: int = 4096) -> None:
        self.pool = Path(pool)
        self.size = size
        self._lock = threading.Lock()
        self._cache: dict[tuple, str | None] = {}
        self._cached = cached

    def _get(self, key: tuple, read) -> str | None:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        uri = thumbnail_uri(read(), self.size)
        with self._lock:
            if len(self._cache) >= self._cached:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = uri
        return uri

    def pool_sample(self, ident: int, key: str) -> str | None:
        """The thumbnail of pool sample `ident` (shard from the id, member from the key)."""
        shard = split_id(ident)[0]
        return self._get(("pool", ident), lambda: read_member(self.pool / f"{shard:05d}.tar", key))

    def archive_item(self, folder: Path, rank: int, ident: int, key: str) -> str | None:
        """The thumbnail of an archive item: from the archive's images.tar, else from the pool."""
        tar = folder / "images.tar"
        if not tar.is_file():
            return self.pool_sample(ident, key)
        return self._get(("archive", str(folder), rank), lambda: read_member(tar, f"{rank:04d}_{key}"))
