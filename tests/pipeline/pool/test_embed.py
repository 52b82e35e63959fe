"""The embed stage: aligned float16 vectors and metadata, stable ids, resume, Dask parity, and bad input counted."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.core.executors import DaskExecutor, LocalExecutor
from pipeline.core.models import ModelRef
from pipeline.core.stage import run_stage
from pipeline.pool.embed import EmbedStage, split_id
from tests.pipeline.shard_files import write_tar

TOY = ModelRef("toy")


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_embeddings_are_aligned_normalised_and_resumable(toy_world: Path, tmp_path: Path) -> None:
    stage = EmbedStage(str(toy_world / "pool"), str(tmp_path), TOY, batch_size=32)
    report = run_stage(stage, LocalExecutor(), progress=False)
    assert sorted(report.done) == ["00000", "00001", "00002"] and not report.failed
    out = tmp_path / "embeddings" / "toy"
    vectors = np.load(out / "00001.npy")
    meta = pq.read_table(out / "00001.parquet").to_pylist()
    assert vectors.dtype == np.float16 and vectors.shape == (50, 128) and len(meta) == 50
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1, atol=2e-3)
    assert [split_id(m["id"]) for m in meta[:3]] == [(1, 0), (1, 1), (1, 2)]
    source = pq.read_table(toy_world / "pool" / "00001.parquet").to_pylist()
    assert [m["key"] for m in meta] == [s["key"] for s in source]
    assert [m["caption"] for m in meta] == [s["caption"] for s in source]
    again = run_stage(stage, LocalExecutor(), progress=False)
    assert again.done == [] and len(again.skipped) == 3


def test_dask_local_cluster_gives_identical_files(toy_world: Path, tmp_path: Path) -> None:
    local = EmbedStage(str(toy_world / "pool"), str(tmp_path / "local"), TOY, batch_size=32)
    run_stage(local, LocalExecutor(), progress=False)
    dask = EmbedStage(str(toy_world / "pool"), str(tmp_path / "dask"), TOY, batch_size=32)
    executor = DaskExecutor(workers=2)
    try:
        report = run_stage(dask, executor, progress=False)
    finally:
        executor.close()
    assert not report.failed
    assert _digests(tmp_path / "local" / "embeddings" / "toy") == _digests(tmp_path / "dask" / "embeddings" / "toy")


def _jpeg(colour: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (colour, 40, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, format="PNG")  # 81 Mpx, a few kB on disk
    return buffer.getvalue()


def test_bad_input_is_counted_and_good_samples_survive(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    members = [("000000000.jpg", _jpeg(10)), ("000000000.txt", b"good one")]
    members += [("000000001.jpg", b""), ("000000002.jpg", b"this is not an image")]
    members += [("000000003.jpg", _jpeg(20)[:200]), ("000000004.png", _bomb())]
    members += [("000000005.jpg", _jpeg(30)), ("000000005.json", b"{not json")]
    write_tar(pool / "00000.tar", members)  # no parquet beside it
    write_tar(pool / "00001.tar", [(f"00010000{i}.jpg", _jpeg(i)) for i in range(4)])
    data = (pool / "00001.tar").read_bytes()
    (pool / "00001.tar").write_bytes(data[: len(data) // 2 + 300])  # truncated mid-archive
    (pool / "00002.tar").write_bytes(b"")  # an empty shard
    report = run_stage(EmbedStage(str(pool), str(tmp_path / "root"), TOY), LocalExecutor(), progress=False)
    assert not report.failed and len(report.done) == 3
    first = report.stats["00000"]
    assert first["embedded"] == 2 and first["samples"] == 6
    assert first["skipped: empty image"] == 1 and first["skipped: not a decodable image"] == 2
    assert first["skipped: image too large"] == 1 and first["skipped: missing parquet"] == 1
    second = report.stats["00001"]
    assert second["skipped: truncated or corrupt tar"] == 1 and 1 <= second["embedded"] <= 3
    assert report.stats["00002"]["embedded"] == 0
    meta = pq.read_table(tmp_path / "root" / "embeddings" / "toy" / "00000.parquet").to_pylist()
    assert [split_id(m["id"])[1] for m in meta] == [0, 5] and meta[0]["caption"] == "good one"
    problems = json.loads((tmp_path / "root" / "embeddings" / "toy" / "00000.problems.json").read_text())
    assert problems["image too large"] == 1


def test_clear_errors_for_a_missing_or_empty_pool(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EmbedStage(str(tmp_path / "nope"), str(tmp_path), TOY).plan()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no \.tar shards"):
        EmbedStage(str(tmp_path / "empty"), str(tmp_path), TOY).plan()
    with pytest.raises(ValueError, match="batch_size"):
        EmbedStage(str(tmp_path), str(tmp_path), TOY, batch_size=0)


def test_kill_9_then_rerun_is_byte_identical(tmp_path: Path) -> None:
    from pipeline.toy.export import generate_toy_world
    from pipeline.toy.world import WorldSpec

    world = tmp_path / "world"
    generate_toy_world(world, WorldSpec(), seed=5, pool_size=400, shard_size=50, bench_size=0, progress=False)
    command = [
        sys.executable,
        "-m",
        "pipeline.app.cli",
        "--quiet",
        "embed",
        "--pool",
        str(world / "pool"),
        "--batch-size",
        "16",
        "--model",
        "toy",
    ]
    subprocess.run([*command, "--root", str(tmp_path / "clean")], check=True, capture_output=True)
    victim = subprocess.Popen([*command, "--root", str(tmp_path / "killed")], stderr=subprocess.DEVNULL)
    out = tmp_path / "killed" / "embeddings" / "toy"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.parquet"))) < 2:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert len(list(out.glob("*.parquet"))) < 8, "the run finished before it could be killed"
    subprocess.run([*command, "--root", str(tmp_path / "killed")], check=True, capture_output=True)
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert _digests(out) == _digests(tmp_path / "clean" / "embeddings" / "toy")
    shutil.rmtree(world)


def test_cli_embed_writes_the_run_manifest(toy_world: Path, tmp_path: Path) -> None:
    from pipeline.app.cli import main

    argv = ["--quiet", "embed", "--pool", str(toy_world / "pool"), "--root", str(tmp_path), "--run", "r1"]
    assert main([*argv, "--model", "toy"]) == 0
    manifest = json.loads((tmp_path / "runs" / "r1" / "manifest.json").read_text())
    embed = manifest["stages"]["embed"]
    assert embed["counts"] == {"samples": 120, "embedded": 120} and embed["done"] == 3 and not embed["failures"]
    assert embed["config"]["model"] == "toy" and "torch" in manifest["versions"]


def _embed_cli(pool: Path, root: Path) -> int:
    from pipeline.app.cli import main

    return main(["--quiet", "embed", "--pool", str(pool), "--root", str(root), "--model", "toy"])


def _sized_jpeg(width: int, height: int, colour: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (colour, 90, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_repeated_key_is_counted_and_the_rest_of_the_shard_kept(tmp_path: Path, capsys) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    members = [("000000000.jpg", _jpeg(10)), ("000000001.jpg", _sized_jpeg(64, 48, 20))]
    members += [("000000001.txt", b"first copy"), ("000000001.jpg", _sized_jpeg(32, 80, 30))]  # the repeat
    members += [("000000001.txt", b"second copy"), ("000000002.jpg", _jpeg(40)), ("000000003.jpg", _jpeg(50))]
    members += [("000000000.jpg", _jpeg(60))]  # a key met again later in the shard: also a repeat
    write_tar(pool / "00000.tar", members)
    assert _embed_cli(pool, tmp_path / "root") == 0
    out = capsys.readouterr().out
    assert "embedded 4 of 4 samples" in out and "skipped: duplicate key: 2" in out
    folder = tmp_path / "root" / "embeddings" / "toy"
    meta = pq.read_table(folder / "00000.parquet").to_pylist()
    assert [m["key"] for m in meta] == ["000000000", "000000001", "000000002", "000000003"]
    assert [split_id(m["id"])[1] for m in meta] == [0, 1, 2, 3]
    assert (meta[1]["width"], meta[1]["height"], meta[1]["caption"]) == (64, 48, "first copy")  # the first copy
    assert (meta[0]["width"], meta[0]["height"]) == (96, 96)
    problems = json.loads((folder / "00000.problems.json").read_text())
    assert problems.get("duplicate key") == 2 and "truncated or corrupt tar" not in problems


def test_a_shard_without_repeats_reports_no_duplicates(tmp_path: Path) -> None:
    from pipeline.core.shard_reader import read_shard

    write_tar(tmp_path / "00000.tar", [("a.jpg", _jpeg(1)), ("a.txt", b"x"), ("b.jpg", _jpeg(2))])
    contents = read_shard(str(tmp_path / "00000.tar"))
    assert [s.key for s in contents.samples] == ["a", "b"] and "duplicate key" not in contents.problems


def test_gif_first_frame_and_exif_orientation_are_decoded(tmp_path: Path, capsys) -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((250, 30, 30), (30, 30, 250))]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    first = io.BytesIO()
    Image.open(io.BytesIO(gif.getvalue())).convert("RGB").save(first, format="PNG")  # the GIF's first frame
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored 64 x 32 pixels are shown rotated a quarter turn, 32 wide
    rotated = io.BytesIO()
    Image.new("RGB", (64, 32), (20, 160, 60)).save(rotated, format="JPEG", exif=exif)
    pool = tmp_path / "pool"
    pool.mkdir()
    members = [("000000000.gif", gif.getvalue()), ("000000001.png", first.getvalue())]
    members += [("000000002.jpg", rotated.getvalue()), ("000000003.jpg", gif.getvalue())]  # GIF bytes named .jpg
    write_tar(pool / "00000.tar", members)
    assert _embed_cli(pool, tmp_path / "root") == 0
    assert "embedded 4 of 4 samples" in capsys.readouterr().out
    folder = tmp_path / "root" / "embeddings" / "toy"
    meta = pq.read_table(folder / "00000.parquet").to_pylist()
    assert [(m["width"], m["height"]) for m in meta] == [(40, 30), (40, 30), (32, 64), (40, 30)]
    vectors = np.load(folder / "00000.npy").astype(np.float32)
    assert float(vectors[0] @ vectors[1]) > 0.999 and float(vectors[0] @ vectors[3]) > 0.999
