"""URL-list ingestion bookkeeping: shard numbering after the pool's last shard, and a move into the pool that was
interrupted half-way finishes without downloading again. (A real download runs in tests/dags.)"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.app.nightly.config import IngestConfig
from pipeline.app.nightly.url_lists import COMPLETE, find_lists, ingest_list, ledger_dir, list_name, next_shard


def _shard(folder: Path, number: int, count: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{number:05d}.tar").write_bytes(b"tar %d" % number)
    (folder / f"{number:05d}.parquet").write_bytes(b"parquet %d" % number)
    (folder / f"{number:05d}_stats.json").write_text(json.dumps({"count": count, "successes": count - 1}))


def test_interrupted_move_into_the_pool_finishes_without_a_download(tmp_path: Path) -> None:
    root, pool = tmp_path, tmp_path / "pool"
    _shard(pool, 0)
    _shard(pool, 1)
    (root / "incoming").mkdir()
    url_list = root / "incoming" / "day 2.parquet"
    url_list.write_bytes(b"not read: the download had finished")
    assert find_lists(root, "incoming/*.parquet") == [url_list]
    assert next_shard(pool) == 2 and next_shard(root / "missing") == 0
    name = list_name(root, url_list)
    assert name == "incoming_day_2.parquet"

    # the state a kill leaves mid-move: start recorded, download complete, shard 2 moved but for its stats file
    staging = ledger_dir(root) / f"{name}.staging"
    ledger_dir(root).mkdir()
    (ledger_dir(root) / f"{name}.start.json").write_text(json.dumps({"start": 2}))
    _shard(staging, 1)  # the seed img2dataset numbered after; never moved
    _shard(staging, 2)
    _shard(staging, 3)
    (staging / COMPLETE).write_text("")
    for suffix in (".tar", ".parquet"):
        (staging / f"00002{suffix}").replace(pool / f"00002{suffix}")
    assert next_shard(pool) == 3  # shard 2 is in the pool but not complete yet

    entry = ingest_list(root, pool, url_list, IngestConfig(urls="incoming/*.parquet"), "2026-11-22")
    assert entry["shards"] == [2, 3] and entry["count"] == 6 and entry["successes"] == 4
    assert entry["run"] == "2026-11-22"
    assert sorted(p.name for p in pool.iterdir()) == sorted(
        f"{n:05d}{s}" for n in range(4) for s in (".tar", ".parquet", "_stats.json")
    )
    assert (pool / "00001.tar").read_bytes() == b"tar 1"  # the seed did not overwrite the pool's shard 1
    assert not staging.exists() and not (ledger_dir(root) / f"{name}.start.json").exists()
    assert ingest_list(root, pool, url_list, IngestConfig(urls="x"), "2026-11-23") == entry  # once only
