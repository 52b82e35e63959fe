"""Write the toy world to disk: an unlabelled pool exactly as img2dataset lays one out, and a labelled benchmark."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

from pipeline.core.io import atomic_path
from pipeline.toy.world import Scene, WorldSpec, render_scene

SHARD_DIGITS = 5  # img2dataset's default oom_shard_count
POOL_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("key", pa.string()),
        ("status", pa.string()),
        ("error_message", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("exif", pa.string()),
        ("sha256", pa.string()),
    ]
)
TRUTH_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("things", pa.list_(pa.string())),
        ("colours", pa.list_(pa.string())),
        ("stuff", pa.list_(pa.string())),
    ]
)


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode an (H, W, 3) uint8 image as JPEG bytes (deterministic for a given libjpeg)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def render_as_pooled(job: tuple[WorldSpec, int, int]) -> Scene:
    """Render scene (spec, seed, index) with its image passed through the pool's JPEG encoding, as models see it."""
    scene = render_scene(*job)
    scene.image = np.asarray(Image.open(io.BytesIO(jpeg_bytes(scene.image))).convert("RGB"))
    return scene


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o444
    info.uname = info.gname = "bigdata"
    tar.addfile(info, io.BytesIO(data))


def sample_key(shard: int, row: int, shard_size: int) -> str:
    """img2dataset's key: shard id and row, zero-padded to the shard-count and samples-per-shard digits."""
    digits = max(1, math.ceil(math.log10(shard_size)))
    return f"{shard * 10**digits + row:0{SHARD_DIGITS + digits}d}"


def write_pool_shard(
    out: Path, spec: WorldSpec, seed: int, shard: int, start: int, count: int, shard_size: int
) -> None:
    """Render scenes start..start+count into shard `shard`: {shard}.tar (jpg/txt/json), .parquet, _stats.json."""
    name = f"{shard:0{SHARD_DIGITS}d}"
    rows, truth = [], []
    with (
        atomic_path(out / "pool" / f"{name}.tar") as tar_path,
        tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for row in range(count):
            scene = render_scene(spec, seed, start + row)
            key = sample_key(shard, row, shard_size)
            data = jpeg_bytes(scene.image)
            height, width = scene.image.shape[:2]
            meta = {
                "url": f"toy://{seed}/{start + row}",
                "caption": scene.caption,
                "key": key,
                "status": "success",
                "error_message": None,
                "width": width,
                "height": height,
                "original_width": width,
                "original_height": height,
                "exif": "{}",
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            _add_member(tar, f"{key}.jpg", data)
            _add_member(tar, f"{key}.json", json.dumps(meta, indent=4).encode())
            _add_member(tar, f"{key}.txt", scene.caption.encode())
            rows.append(meta)
            truth.append(
                {
                    "key": key,
                    "things": [t for t, _ in scene.things],
                    "colours": [c for _, c in scene.things],
                    "stuff": scene.stuff,
                }
            )
    with atomic_path(out / "pool" / f"{name}.parquet") as path:
        pq.write_table(pa.Table.from_pylist(rows, schema=POOL_SCHEMA), path)
    with atomic_path(out / "toy_truth" / f"{name}.parquet") as path:
        pq.write_table(pa.Table.from_pylist(truth, schema=TRUTH_SCHEMA), path)
    stats = {
        "count": count,
        "successes": count,
        "failed_to_download": 0,
        "failed_to_resize": 0,
        "duration": 0.0,
        "start_time": 0.0,
        "end_time": 0.0,
        "status_dict": {"success": count} if count else {},
    }
    with atomic_path(out / "pool" / f"{name}_stats.json") as path:
        path.write_text(json.dumps(stats, indent=4))


def write_benchmark_range(out: Path, spec: WorldSpec, seed: int, start: int, count: int) -> list[str]:
    """Render benchmark scenes start..start+count as images/{id}.jpg and masks/{id}.png; return their ids."""
    ids = []
    for index in range(start, start + count):
        scene = render_scene(spec, seed, index)
        image_id = f"toy_{index:06d}"
        with atomic_path(out / "benchmark" / "images" / f"{image_id}.jpg") as path:
            path.write_bytes(jpeg_bytes(scene.image))
        with atomic_path(out / "benchmark" / "masks" / f"{image_id}.png") as path:
            Image.fromarray(scene.mask).save(path, format="PNG")
        ids.append(image_id)
    return ids


def generate_toy_world(
    out: Path,
    spec: WorldSpec,
    seed: int = 0,
    pool_size: int = 2000,
    shard_size: int = 500,
    bench_size: int = 100,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write a pool of `pool_size` scenes in shards and a benchmark of `bench_size` others; return a summary."""
    if pool_size < 0 or bench_size < 0:
        raise ValueError(f"image counts must be non-negative, got pool {pool_size}, benchmark {bench_size}")
    if shard_size <= 0:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    out = Path(out)
    shards = [
        (s, s * shard_size, min(shard_size, pool_size - s * shard_size)) for s in range(-(-pool_size // shard_size))
    ]
    summary = {
        "spec": json.loads(json.dumps(asdict(spec))),
        "seed": seed,
        "pool_size": pool_size,
        "shard_size": shard_size,
        "shards": len(shards),
        "bench_size": bench_size,
    }
    marker = out / "toy_world.json"
    if marker.is_file() and json.loads(marker.read_text()) != summary:
        raise ValueError(f"{out} already holds a toy world with other options; choose another --out or delete it")
    with atomic_path(marker) as path:
        path.write_text(json.dumps(summary, indent=2))
    # A shard is finished once its _stats.json (written last) exists: a rerun after a crash skips it.
    todo = [s for s in shards if not (out / "pool" / f"{s[0]:0{SHARD_DIGITS}d}_stats.json").is_file()]
    # Benchmark scenes follow the pool's scenes in the same stream, so they are never in the pool.
    chunks = [(pool_size + i, min(100, bench_size - i)) for i in range(0, bench_size, 100)]
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(write_pool_shard, out, spec, seed, s, a, n, shard_size) for s, a, n in todo]
        jobs += [pool.submit(write_benchmark_range, out, spec, seed, a, n) for a, n in chunks]
        results = [j.result() for j in tqdm(jobs, desc="toy world", unit="task", disable=not progress)]
    ids = sorted(i for r in results if isinstance(r, list) for i in r)
    bench = out / "benchmark"
    bench.mkdir(parents=True, exist_ok=True)
    with atomic_path(bench / "classes.txt") as path:
        path.write_text("\n".join(spec.classes) + "\n")
    with atomic_path(bench / "splits" / "val.txt") as path:
        path.write_text("".join(f"{i}\n" for i in ids))
    return summary
