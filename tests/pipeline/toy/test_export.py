"""The toy pool is written exactly as img2dataset writes one, byte-identically for the same seed."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.core.shard_reader import decode_image, read_shard
from pipeline.toy.export import generate_toy_world, sample_key
from pipeline.toy.world import WorldSpec

IMG2DATASET_COLUMNS = [
    "url",
    "caption",
    "key",
    "status",
    "error_message",
    "width",
    "height",
    "original_width",
    "original_height",
    "exif",
    "sha256",
]


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_generation_is_byte_identical(tmp_path: Path) -> None:
    spec = WorldSpec(image_size=48)
    for name, workers in (("a", 1), ("b", 2)):
        generate_toy_world(
            tmp_path / name,
            spec,
            seed=9,
            pool_size=30,
            shard_size=12,
            bench_size=5,
            workers=workers,
            progress=False,
        )
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert first == second and len(first) > 20
    generate_toy_world(tmp_path / "c", spec, seed=10, pool_size=30, shard_size=12, bench_size=5, progress=False)
    assert _digests(tmp_path / "c")["pool/00000.tar"] != first["pool/00000.tar"]


def test_pool_has_the_img2dataset_layout(toy_world: Path) -> None:
    pool = toy_world / "pool"
    assert sorted(p.name for p in pool.iterdir()) == [
        f"0000{s}{ext}" for s in range(3) for ext in (".parquet", ".tar", "_stats.json")
    ]
    with tarfile.open(pool / "00000.tar") as tar:
        names = tar.getnames()
    assert names[:3] == ["0000000.jpg", "0000000.json", "0000000.txt"] and len(names) == 150
    table = pq.read_table(pool / "00001.parquet")
    assert table.column_names == IMG2DATASET_COLUMNS and table.num_rows == 50
    assert table.column("key")[0].as_py() == sample_key(1, 0, 50) == "0000100"
    assert set(table.column("status").to_pylist()) == {"success"}
    stats = json.loads((pool / "00002_stats.json").read_text())
    assert stats["count"] == stats["successes"] == 20 and stats["failed_to_download"] == 0


def test_webdataset_reads_back_every_sample(toy_world: Path) -> None:
    shards = [read_shard(str(p)) for p in sorted((toy_world / "pool").glob("*.tar"))]
    samples = [s for shard in shards for s in shard.samples]
    assert len(samples) == 120 and not any(shard.problems for shard in shards)
    assert decode_image(samples[0].data)[0].shape == (96, 96, 3)
    meta = pq.read_table(toy_world / "pool" / "00000.parquet").to_pylist()
    assert [s.key for s in samples[:50]] == [m["key"] for m in meta]
    assert [s.meta["caption"] for s in samples[:50]] == [m["caption"] for m in meta]
    assert [s.meta["url"] for s in samples[:50]] == [m["url"] for m in meta]


def test_benchmark_layout_and_masks(toy_world: Path, small_spec: WorldSpec) -> None:
    bench = toy_world / "benchmark"
    classes = (bench / "classes.txt").read_text().split()
    ids = (bench / "splits" / "val.txt").read_text().split()
    assert classes == list(small_spec.classes) and len(ids) == 12
    mask = np.asarray(Image.open(bench / "masks" / f"{ids[0]}.png"))
    image = Image.open(bench / "images" / f"{ids[0]}.jpg")
    assert mask.shape == (96, 96) and image.size == (96, 96) and mask.max() < len(classes)
    pool_urls = {m["url"] for p in (toy_world / "pool").glob("*.parquet") for m in pq.read_table(p).to_pylist()}
    assert len(pool_urls) == 120  # the benchmark's scenes come after the pool's, so they never overlap


def test_rerun_after_a_crash_finishes_identically_and_other_options_are_refused(tmp_path: Path) -> None:
    spec = WorldSpec(image_size=48)
    options = {"seed": 4, "pool_size": 20, "shard_size": 10, "bench_size": 3, "workers": 1, "progress": False}
    generate_toy_world(tmp_path / "w", spec, **options)
    before = _digests(tmp_path / "w")
    (tmp_path / "w" / "pool" / "00001_stats.json").unlink()  # as if killed before shard 1 finished
    (tmp_path / "w" / "pool" / "00001.tar").write_bytes(b"half a tar")
    generate_toy_world(tmp_path / "w", spec, **options)
    assert _digests(tmp_path / "w") == before
    with pytest.raises(ValueError, match="other options"):
        generate_toy_world(tmp_path / "w", spec, **{**options, "seed": 5})
