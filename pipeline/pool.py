"""Reading img2dataset pools: shard discovery and decoded samples from webdataset tars."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image


@dataclass
class PoolSample:
    """One decoded pool image with its img2dataset key, caption and url."""

    key: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    caption: str
    url: str


def list_shards(pool_dir: Path | str) -> list[Path]:
    """The pool's tar shards in order; a clear error for a missing folder or an empty pool."""
    pool_dir = Path(pool_dir)
    if not pool_dir.is_dir():
        raise FileNotFoundError(f"pool folder not found: {pool_dir}")
    shards = sorted(pool_dir.glob("*.tar"))
    if not shards:
        raise ValueError(f"no .tar shards in pool folder {pool_dir}")
    return shards


def iter_shard(shard: Path | str) -> Iterator[PoolSample]:
    """Decode the samples of one webdataset shard in order (samples without an image are skipped)."""
    dataset = wds.WebDataset(str(shard), shardshuffle=False, empty_check=False)
    for sample in dataset:
        data = sample.get("jpg") or sample.get("png") or sample.get("webp")
        if data is None:
            continue
        meta = json.loads(sample["json"]) if "json" in sample else {}
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        caption = sample["txt"].decode() if "txt" in sample else meta.get("caption") or ""
        yield PoolSample(sample["__key__"], image, caption, meta.get("url", ""))
