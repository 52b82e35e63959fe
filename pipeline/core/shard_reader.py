"""Fault-tolerant reading of one img2dataset shard: every sample with its row, and a count of what went wrong."""

from __future__ import annotations

import io
import json
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import fsspec
import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageOps
from webdataset.tariterators import base_plus_ext, group_by_keys, tar_file_iterator

IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")  # by preference
MAX_PIXELS = 64_000_000  # larger images are refused as decompression bombs


@dataclass
class RawSample:
    """A sample's undecoded image bytes, its row in the shard (tar order) and its metadata."""

    row: int
    key: str
    data: bytes | None
    meta: dict


@dataclass
class ShardContents:
    """What a shard held: its samples in order, and the problems met while reading it, by reason."""

    samples: list[RawSample] = field(default_factory=list)
    problems: Counter = field(default_factory=Counter)


def read_shard(tar_url: str) -> ShardContents:
    """Read a shard's tar with webdataset's tar iterator; a truncated or corrupt tar keeps the samples before the fault.

    A key met again (a repeated member, or a whole sample repeated anywhere in the shard) keeps its first copy; each
    later copy is counted once as "duplicate key" and reading goes on. The shard's parquet, when present, supplies
    url and caption for rows whose json is missing.
    """
    contents = ShardContents()
    contents.samples.extend(iter_shard(tar_url, contents.problems))
    return contents


def iter_shard(tar_url: str, problems: Counter) -> Iterator[RawSample]:
    """Stream a shard's samples in tar order, as `read_shard` reads them, counting problems into `problems`.

    Only one sample's bytes are held at a time; the parquet (ids, urls, captions: small) is read first. The counts
    are complete once the iterator is exhausted, in the order `read_shard` gives them.
    """
    errors: list[Exception] = []
    parquet_rows, parquet_problem = _parquet_rows(tar_url)

    def stop(error: Exception) -> bool:
        errors.append(error)
        return False

    row = 0
    try:
        with fsspec.open(tar_url, "rb") as stream:
            files = ({**f, "__url__": tar_url} for f in tar_file_iterator(stream, handler=stop))
            for sample in group_by_keys(first_copies(files, problems), handler=stop):
                data = next((sample[s] for s in IMAGE_SUFFIXES if s in sample), None)
                meta = _json(sample.get("json"))
                if "txt" in sample and "caption" not in meta:
                    meta["caption"] = sample["txt"].decode("utf-8", "replace")
                raw = RawSample(row, sample["__key__"], data, meta)
                _fill_meta(raw, parquet_rows)
                row += 1
                yield raw
    except FileNotFoundError:
        raise
    except Exception as error:  # a broken tar ends the shard early; its good samples are kept
        errors.append(error)
    if errors:
        problems["truncated or corrupt tar"] += 1
    if parquet_problem:
        problems[parquet_problem] += 1


def first_copies(files: Iterable[dict], problems: Counter) -> Iterator[dict]:
    """Tar members (webdataset's dicts) without later copies of a key; counts each later copy as "duplicate key".

    webdataset's group_by_keys raises on a member whose key and suffix its current sample already holds, which
    would end the shard there. Here a copy starts again when its key returns after another key, or when a suffix
    repeats within the key; every member of a later copy is dropped, so the first copy is the one kept.
    """
    seen: set[str] = set()
    key, suffixes, dropping = None, set(), False
    for member in files:
        name, suffix = base_plus_ext(member.get("fname", ""))
        if name is None:  # not a sample member: group_by_keys skips it
            yield member
            continue
        suffix = suffix.lower()
        if name != key:
            key, suffixes, dropping = name, set(), name in seen
            seen.add(name)
            if dropping:
                problems["duplicate key"] += 1
        elif not dropping and suffix in suffixes:
            dropping = True
            problems["duplicate key"] += 1
        if not dropping:
            suffixes.add(suffix)
            yield member


def _json(raw: bytes | None) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parquet_rows(tar_url: str) -> tuple[dict[str, dict], str | None]:
    """The shard parquet's url and caption by key, and the problem met reading it (None when there was none)."""
    parquet_url = tar_url[: -len(".tar")] + ".parquet"
    try:
        with fsspec.open(parquet_url, "rb") as f:
            return {r["key"]: r for r in pq.read_table(f, columns=["key", "url", "caption"]).to_pylist()}, None
    except FileNotFoundError:
        return {}, "missing parquet"
    except Exception:
        return {}, "unreadable parquet"


def _fill_meta(sample: RawSample, rows: dict[str, dict]) -> None:
    row = rows.get(sample.key, {})
    for name in ("url", "caption"):
        if not sample.meta.get(name) and row.get(name):
            sample.meta[name] = row[name]


def decode_upright(data: bytes | None) -> tuple[Image.Image | None, str | None]:
    """Decode image bytes to an upright RGB PIL image, or return (None, reason) for empty, corrupt or huge images.

    The format is read from the bytes, not the member's name; an animated image gives its first frame, and an EXIF
    orientation is applied, so the pixels are upright as a viewer shows them.
    """
    if not data:
        return None, "empty image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    return None, "image too large"
                upright = ImageOps.exif_transpose(image)  # a decoded copy even when there is nothing to turn
                return (upright if upright.mode == "RGB" else upright.convert("RGB")), None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, "image too large"
    except Exception:
        return None, "not a decodable image"


def decode_image(data: bytes | None) -> tuple[np.ndarray | None, str | None]:
    """decode_upright's pixels as (H, W, 3) uint8 RGB, or (None, reason)."""
    image, reason = decode_upright(data)
    return (None, reason) if image is None else (np.asarray(image), None)
