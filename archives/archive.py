"""A concept archive on disk: ranked items (items.parquet), how they were found (query.json), optional images.tar."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.shard_reader import decode_image, read_shard
from pipeline.pool.embed import split_id

ITEMS = "items.parquet"
QUERY = "query.json"
IMAGES = "images.tar"
ITEMS_SCHEMA = pa.schema(
    [
        ("rank", pa.int32()),
        ("id", pa.int64()),
        ("score", pa.float32()),
        ("key", pa.string()),
        ("url", pa.string()),
    ]
)


def image_member(rank: int, key: str) -> str:
    """The name of an item's image inside images.tar."""
    return f"{rank:04d}_{key}.jpg"


@dataclass
class Archive:
    """One concept's archive: its ranked items and the query that produced them."""

    path: Path
    items: pa.Table  # ITEMS_SCHEMA, rank 1..n
    query: dict  # query.json: concept, prompts, model, index version, parameters, strength, weak

    @property
    def concept(self) -> str:
        """The concept's name."""
        return str(self.query["concept"])

    @property
    def context(self) -> bool:
        """Whether the concept is a context concept (ReCo's context elimination builds these first)."""
        return bool(self.query.get("context", False))

    @property
    def ids(self) -> list[int]:
        """Item ids in rank order."""
        return self.items.column("id").to_pylist()


def read_archive(path: Path | str) -> Archive:
    """Read one concept's archive folder."""
    path = Path(path)
    if not (path / ITEMS).is_file() or not (path / QUERY).is_file():
        raise FileNotFoundError(f"not an archive (no {ITEMS} or {QUERY}): {path}")
    items = pq.read_table(path / ITEMS).sort_by("rank")
    return Archive(path, items, json.loads((path / QUERY).read_text()))


def list_archives(run_dir: Path | str) -> list[Archive]:
    """Every concept archive under archives/{model_id}/{run}/, in folder-name order."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"archive run folder not found: {run_dir}")
    archives = [read_archive(p) for p in sorted(run_dir.iterdir()) if (p / ITEMS).is_file()]
    if not archives:
        raise ValueError(f"no archives in {run_dir}; run 'coarchive archive' first")
    return archives


def archive_images(archive: Archive, pool: Path | str | None = None) -> tuple[list[int], list[np.ndarray]]:
    """The archive's images in rank order as (H, W, 3) uint8 arrays, with their ids; undecodable ones are skipped.

    Read from the archive's images.tar when it has one, else from the pool shards (`pool`) the items came from.
    """
    rows = archive.items.to_pylist()
    by_key: dict[str, bytes] = {}
    if (archive.path / IMAGES).is_file():
        with tarfile.open(archive.path / IMAGES) as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member)
                if handle is not None:
                    by_key[member.name.split("_", 1)[1].rsplit(".", 1)[0]] = handle.read()
    else:
        if pool is None:
            raise ValueError(f"archive {archive.path} has no {IMAGES}; give the pool folder to read images from")
        shards = sorted({split_id(r["id"])[0] for r in rows})
        wanted = {r["key"] for r in rows}
        for shard in shards:
            for sample in read_shard(str(Path(pool) / f"{shard:05d}.tar")).samples:
                if sample.key in wanted and sample.data:
                    by_key[sample.key] = sample.data
    ids, images = [], []
    for row in rows:
        image, _ = decode_image(by_key.get(row["key"]))
        if image is not None:
            ids.append(row["id"])
            images.append(image)
    return ids, images


def images_tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A deterministic tar (fixed mtime, mode, owner) of (name, bytes) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
