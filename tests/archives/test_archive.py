"""`coarchive archive` end to end on a small toy world: precision, weak flags, dedup, files, reruns, diff, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from archives.archive import ITEMS_SCHEMA, archive_images, list_archives, read_archive
from archives.dedup import StoredVectors
from archives.registry import Concept, save_registry
from archives.toy_quality import archive_precision
from pipeline.app.cli import main
from pipeline.toy.world import STUFF, WorldSpec

COMMON = ("circle", "square", "triangle", "star", "cross", "ring")
# Measured on this world (600 images, seed 5, rare rate 0.05) at k = 20: every common thing and stuff class 1.00;
# heart 0.80, crescent 0.75 (24 and 26 pool images); dog and car weak, nothing else weak.
PRECISION_FLOOR = 0.9
K = 20


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.toy.export import generate_toy_world

    out = tmp_path_factory.mktemp("archive_world")
    spec = WorldSpec(rare_rate=0.05)
    generate_toy_world(out, spec, seed=5, pool_size=600, shard_size=200, bench_size=2, workers=1, progress=False)
    root = out / "root"
    assert main(["--quiet", "embed", "--pool", str(out / "pool"), "--root", str(root), "--model", "toy"]) == 0
    assert main(["--quiet", "index", "--root", str(root)]) == 0
    concepts = [Concept(n) for n in (*COMMON, "heart", "crescent")]
    concepts += [Concept(n, context=True) for n in STUFF] + [Concept("dog"), Concept("car", ("automobile",))]
    save_registry(root / "concepts.yaml", concepts)
    return out


@pytest.fixture(scope="module")
def run_a(world: Path) -> tuple[Path, str]:
    """Run 'a' over the whole registry, with its stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["archive", "--root", str(world / "root"), "--pool", str(world / "pool"), "--run", "a", "-k", "20"])
    assert code == 0
    return world / "root" / "archives" / "toy" / "a", err.getvalue()


def test_precision_and_weak_flags(world: Path, run_a: tuple[Path, str]) -> None:
    run, stderr = run_a
    rows = {r["concept"]: r for r in archive_precision(run, world / "toy_truth")}
    for name in (*COMMON, *STUFF):
        assert rows[name]["precision"] >= PRECISION_FLOOR, (name, rows[name])
        assert not rows[name]["weak"], (name, rows[name])
    for name in ("dog", "car"):
        assert rows[name]["weak"] and rows[name]["precision"] == 0
        assert f"warning: archive '{name}' is weak:" in stderr
    assert min(rows[n]["strength"] for n in COMMON) > rows["dog"]["strength"] + 0.3
    summary = json.loads((run / "archives.json").read_text())
    assert [c["concept"] for c in summary["concepts"] if c["weak"]] == ["car", "dog"]


def test_archive_files_match_the_contract(world: Path, run_a: tuple[Path, str]) -> None:
    run, _ = run_a
    archives = list_archives(run)
    assert len(archives) == 15
    circle = read_archive(run / "circle")
    assert pq.read_schema(run / "circle" / "items.parquet").remove_metadata() == ITEMS_SCHEMA
    assert circle.items.column("rank").to_pylist() == list(range(1, K + 1))
    scores = circle.items.column("score").to_numpy()
    assert np.all(np.diff(scores) <= 1e-6)
    query = circle.query
    assert query["templates"] == "toy" and query["k"] == K and query["index"]["version"] == "v1"
    assert {"strength", "standouts", "weak", "pool_mean", "pool_std", "duplicates_removed"} <= set(query)
    assert query["items"] == K and query["short_reason"] == "" and query["candidates_searched"] >= K
    assert read_archive(run / "sky").context and not circle.context
    assert read_archive(run / "car").query["synonyms"] == ["automobile"]


def test_no_near_duplicates_kept(world: Path, run_a: tuple[Path, str]) -> None:
    run, _ = run_a
    stored = StoredVectors(world / "root" / "embeddings" / "toy")
    removed = 0
    for archive in list_archives(run):
        vectors = stored.get(archive.ids)  # (k, d)
        cos = vectors @ vectors.T
        np.fill_diagonal(cos, -1)
        assert cos.max() < archive.query["dedup_threshold"], archive.concept
        removed += archive.query["duplicates_removed"]
    # this pool holds no copies, and at the toy model's threshold (0.999) distinct images are never duplicates;
    # copies being dropped is covered by test_context_world.py
    assert removed == 0


def test_images_from_tar_and_from_pool(world: Path, run_a: tuple[Path, str], tmp_path: Path) -> None:
    run, _ = run_a
    archive = read_archive(run / "heart")
    ids, images = archive_images(archive)
    assert ids == archive.ids and all(im.ndim == 3 and im.shape[2] == 3 for im in images)
    bare = tmp_path / "heart"
    shutil.copytree(run / "heart", bare)
    (bare / "images.tar").unlink()
    pool_ids, pool_images = archive_images(read_archive(bare), world / "pool")
    assert pool_ids == ids and all(np.array_equal(a, b) for a, b in zip(images, pool_images, strict=True))


def test_rerun_is_byte_identical_and_diff_counts(world: Path, run_a: tuple[Path, str], capsys) -> None:
    run, _ = run_a
    root = str(world / "root")
    before = (run / "circle" / "items.parquet").read_bytes()
    assert main(["archive", "--root", root, "--run", "a", "-k", "20", "--concepts", "circle", "--no-images"]) == 0
    assert (run / "circle" / "items.parquet").read_bytes() == before
    assert len(json.loads((run / "archives.json").read_text())["concepts"]) == 15  # others kept in the summary

    assert main(["archive", "--root", root, "--run", "b", "-k", "25", "--concepts", "circle,dog", "--no-images"]) == 0
    capsys.readouterr()
    assert main(["archive", "diff", "a", "b", "--root", root, "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert [row["concept"] for row in diff["concepts"]] == ["circle", "dog"]
    for row in diff["concepts"]:
        assert (row["added"], row["removed"], row["kept"], row["mean_rank_change"]) == (5, 0, 20, 0.0)
    assert "heart" in diff["only_in_a"] and diff["only_in_b"] == []
    assert main(["archive", "diff", "b", "a", "--root", root]) == 0
    table = capsys.readouterr().out
    assert "circle" in table and "only in a:" in table
    reverse = next(line.split() for line in table.splitlines() if line.startswith("circle"))
    assert reverse[1:4] == ["0", "5", "20"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--version", "v9"], "run 'coarchive index' first"),
        (["--concepts", "unicorn"], "unknown concept(s) 'unicorn'"),
        (["-k", "0"], "k must be positive"),
        (["--version", "fake"], "embeds in dimension"),
        (["--templates", "imagenet"], "unknown template set"),
    ],
)
def test_archive_errors(world: Path, extra: list[str], message: str, capsys) -> None:
    fake = world / "root" / "index" / "toy" / "fake"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "index.json").write_text(json.dumps({"dim": 7, "count": 10, "factory": "Flat", "nprobe": 1}))
    assert main(["archive", "--root", str(world / "root"), "--run", "err", "--no-images", *extra]) == 2
    assert message in capsys.readouterr().err


def test_archive_needs_a_registry(tmp_path: Path, capsys) -> None:
    assert main(["archive", "--root", str(tmp_path)]) == 2
    assert "concept registry not found" in capsys.readouterr().err
    save_registry(tmp_path / "concepts.yaml", [])
    assert main(["archive", "--root", str(tmp_path)]) == 2
    assert "registry is empty" in capsys.readouterr().err
