"""The ingest stage: URL lists -> an img2dataset pool (webdataset shards), resumable, with per-shard stats."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

INPUT_FORMATS = ("txt", "csv", "tsv", "parquet", "json", "jsonl")


def ingest(
    url_list: str,
    pool: str,
    input_format: str = "parquet",
    url_col: str = "url",
    caption_col: str | None = "caption",
    image_size: int = 256,
    shard_size: int = 10_000,
    processes: int = 1,
    threads: int = 32,
    timeout: int = 10,
    incremental_mode: str = "incremental",
) -> dict:
    """Download the URL list into `pool` with img2dataset (webdataset output; finished shards are skipped).

    `incremental_mode` is img2dataset's: 'incremental' skips finished shards, 'extend' numbers new shards after
    the last one in `pool`.
    """
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"unknown input format {input_format!r}; choose from {', '.join(INPUT_FORMATS)}")
    if "://" not in url_list and not Path(url_list).exists():
        raise FileNotFoundError(f"URL list not found: {url_list}")
    for name, value in (
        ("image_size", image_size),
        ("shard_size", shard_size),
        ("processes", processes),
        ("threads", threads),
    ):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no update check over the network at import
    from img2dataset import download

    download(
        url_list=url_list,
        output_folder=pool,
        output_format="webdataset",
        input_format=input_format,
        url_col=url_col,
        caption_col=caption_col,
        image_size=image_size,
        resize_mode="keep_ratio",
        resize_only_if_bigger=True,
        number_sample_per_shard=shard_size,
        processes_count=processes,
        thread_count=threads,
        timeout=timeout,
        incremental_mode=incremental_mode,
        enable_wandb=False,
    )
    return pool_stats(pool)


def pool_stats(pool: str) -> dict:
    """Totals over a pool's {shard}_stats.json files: count, successes, failures and their reasons."""
    folder = Path(pool)
    if not folder.is_dir():
        raise FileNotFoundError(f"pool folder not found: {pool}")
    totals: Counter = Counter()
    reasons: Counter = Counter()
    shards = sorted(folder.glob("*_stats.json"))
    for path in shards:
        stats = json.loads(path.read_text())
        for name in ("count", "successes", "failed_to_download", "failed_to_resize"):
            totals[name] += int(stats.get(name, 0))
        reasons.update(stats.get("status_dict", {}))
    return {"shards": len(shards), **totals, "reasons": dict(reasons)}
