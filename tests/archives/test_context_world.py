"""Archives on a toy world with context and re-crawled copies: full archives, copies dropped, fair precision and flags.

In a world whose things favour their backgrounds (star on brick), distinct images of one concept sit very close in
the toy CLIP's space; near-duplicate removal at 0.95 used to drop them, leaving brick 13 of 20 items, and the archive
was then judged against k. The pool here also holds a re-crawled shard: exact copies of 100 images under new keys.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archives.archive import list_archives, read_archive
from archives.registry import Concept, save_registry
from archives.toy_quality import archive_precision
from pipeline.app.cli import main
from pipeline.core.shard_reader import read_shard
from pipeline.toy.world import STUFF, WorldSpec

COMMON = ("circle", "square", "triangle", "star", "cross", "ring")
K = 20
COPIES = 100  # images of shard 0 copied into a fourth shard


def _copy_shard(out: Path, copies: int) -> None:
    """pool/00003.tar: the first `copies` images of shard 0 again under new keys, with their truth rows."""
    samples = read_shard(str(out / "pool" / "00000.tar")).samples[:copies]
    truth = pq.read_table(out / "toy_truth" / "00000.parquet").to_pylist()[:copies]
    with tarfile.open(out / "pool" / "00003.tar", "w") as tar:
        for row, sample in enumerate(samples):
            key = f"copy{row:04d}"
            meta = {**sample.meta, "key": key, "url": f"copy-of:{sample.key}"}
            for name, data in ((f"{key}.jpg", sample.data), (f"{key}.json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    rows = [{**t, "key": f"copy{row:04d}"} for row, t in enumerate(truth)]
    pq.write_table(pa.Table.from_pylist(rows), out / "toy_truth" / "00003.parquet")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.toy.export import generate_toy_world

    out = tmp_path_factory.mktemp("context_world")
    spec = WorldSpec(context_rate=1.0)
    generate_toy_world(out, spec, seed=5, pool_size=600, shard_size=200, bench_size=2, workers=1, progress=False)
    _copy_shard(out, COPIES)
    root = out / "root"
    assert main(["--quiet", "embed", "--pool", str(out / "pool"), "--root", str(root), "--model", "toy"]) == 0
    assert main(["--quiet", "index", "--root", str(root), "--model", "toy"]) == 0
    concepts = [Concept(n) for n in (*COMMON, "heart", "crescent")]
    concepts += [Concept(n, context=True) for n in STUFF] + [Concept("dog"), Concept("car")]
    save_registry(root / "concepts.yaml", concepts)
    return out


@pytest.fixture(scope="module")
def run(world: Path) -> tuple[Path, str]:
    """A k = 20 archive run over the whole registry, with its stderr."""
    err = io.StringIO()
    argv = ["--quiet", "archive", "--root", str(world / "root"), "--model", "toy", "--run", "c", "-k", str(K)]
    with contextlib.redirect_stderr(err):
        assert main([*argv, "--no-images"]) == 0
    return world / "root" / "archives" / "toy" / "c", err.getvalue()


def test_archives_are_full_and_copies_dropped(run: tuple[Path, str]) -> None:
    folder, _ = run
    removed = 0
    for archive in list_archives(folder):
        query = archive.query
        assert len(archive.ids) == query["items"] == K, (archive.concept, query["short_reason"])
        assert query["short_reason"] == "" and query["dedup_threshold"] == 0.999
        assert query["candidates_searched"] >= K + query["duplicates_removed"]
        urls = archive.items.column("url").to_pylist()
        originals = {u.removeprefix("copy-of:") for u in urls if u.startswith("copy-of:")}
        keys = set(archive.items.column("key").to_pylist())
        assert not originals & keys, archive.concept  # never an image and its copy
        removed += query["duplicates_removed"]
    assert removed > 0  # the copies reached the candidates and were dropped


def test_precision_and_weak_flags_judge_what_is_held(world: Path, run: tuple[Path, str]) -> None:
    folder, stderr = run
    rows = {r["concept"]: r for r in archive_precision(folder, world / "toy_truth")}
    for name in (*COMMON, *STUFF):
        assert rows[name]["precision"] == 1.0, rows[name]
        assert not rows[name]["weak"], rows[name]  # grass was flagged weak at precision 1.00
    for name in ("dog", "car"):
        assert rows[name]["weak"] and rows[name]["precision"] == 0
    assert "warning: archive 'grass'" not in stderr and "warning: archive 'dog' is weak:" in stderr


def test_short_archive_says_why_and_is_judged_on_its_items(world: Path, capsys) -> None:
    root = str(world / "root")
    argv = ["archive", "--root", root, "--model", "toy", "--run", "all", "--concepts", "sky", "--no-images"]
    assert main([*argv, "-k", "800"]) == 0  # more than the 700 images the index holds
    archive = read_archive(Path(root) / "archives" / "toy" / "all" / "sky")
    query = archive.query
    assert query["items"] == len(archive.ids) == 600 and query["candidates_searched"] == 700
    assert query["duplicates_removed"] == COPIES
    assert query["short_reason"] == (
        "600 of 800 items: the index holds only 700 images and all were searched; "
        f"{COPIES} of them were near-duplicates (cosine >= 0.999) of kept items"
    )
    assert f"note: archive 'sky' holds {query['short_reason']}" in capsys.readouterr().err
    (row,) = archive_precision(Path(root) / "archives" / "toy" / "all", world / "toy_truth")
    assert row["items"] == 600 and row["precision"] == row["hits"] / 600
