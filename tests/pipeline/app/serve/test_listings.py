"""Listings stay inside the data root: files symlinked out are left out, unreadable entries skipped and reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SECRET = "TOP-SECRET-FILE-OUTSIDE-THE-ROOT"


@pytest.fixture
def linked_files(serve_root: Path, tmp_path: Path):
    """Real folders inside the root whose query.json, bank.json and manifest.json are symlinks to outside files."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "query.json").write_text(json.dumps({"concept": SECRET, "weak": False}))
    (outside / "bank.json").write_text(json.dumps({"concepts": [SECRET], "encoder": SECRET, "method": "x"}))
    (outside / "manifest.json").write_text(json.dumps({"run": SECRET, "stages": {SECRET: {}}}))
    archive = serve_root / "archives" / "toy" / "toy" / "linked"
    archive.mkdir()
    shutil.copy(serve_root / "archives" / "toy" / "toy" / "circle" / "items.parquet", archive)
    (archive / "query.json").symlink_to(outside / "query.json")
    bank = serve_root / "banks" / "toy" / "linked"
    bank.mkdir()
    shutil.copy(serve_root / "banks" / "toy" / "toy" / "bank.safetensors", bank)
    (bank / "bank.json").symlink_to(outside / "bank.json")
    run = serve_root / "runs" / "linked"
    run.mkdir()
    (run / "manifest.json").symlink_to(outside / "manifest.json")
    yield
    for folder in (archive, bank, run):
        shutil.rmtree(folder)


def test_listings_do_not_follow_symlinked_files_out_of_the_root(client, linked_files):
    for path in ("/api/archives", "/api/concepts", "/api/banks", "/api/runs"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert SECRET not in answer.text, path
        assert "linked" in answer.headers.get("x-coarchive-skipped", ""), path  # left out, and said so
    assert SECRET not in client.get("/api/runs/linked").text  # fetched directly: refused as before


@pytest.fixture
def broken_entries(serve_root: Path):
    """One archive, one bank and one run whose JSON is not readable, beside the good ones."""
    archive = serve_root / "archives" / "toy" / "toy" / "broken"
    shutil.copytree(serve_root / "archives" / "toy" / "toy" / "circle", archive)
    (archive / "query.json").write_text("{not json")
    bank = serve_root / "banks" / "toy" / "broken"
    shutil.copytree(serve_root / "banks" / "toy" / "toy", bank)
    (bank / "bank.json").write_bytes(b"\xff\xfe\x00garbage")
    run = serve_root / "runs" / "broken"
    run.mkdir()
    (run / "manifest.json").write_text("[1, 2")
    yield
    for folder in (archive, bank, run):
        shutil.rmtree(folder)


def test_one_unreadable_entry_is_skipped_and_reported(client, broken_entries):
    runs = client.get("/api/archives")
    assert runs.status_code == 200, runs.text
    slugs = {c["slug"] for c in runs.json()[0]["concepts"]}
    assert "circle" in slugs and "broken" not in slugs
    assert json.loads(runs.headers["x-coarchive-skipped"]) == ["archives/toy/toy/broken: query.json is not valid JSON"]
    concepts = client.get("/api/concepts")
    assert concepts.status_code == 200 and "circle" in {c["slug"] for c in concepts.json()}
    banks = client.get("/api/banks")
    assert banks.status_code == 200 and [b["run"] for b in banks.json()] == ["toy"]
    assert "banks/toy/broken" in banks.headers["x-coarchive-skipped"]
    runs = client.get("/api/runs")
    assert runs.status_code == 200 and [r["run"] for r in runs.json()] == ["toy"]
    assert "runs/broken" in runs.headers["x-coarchive-skipped"]
    assert "x-coarchive-skipped" not in client.get("/api/runs/toy").headers


def test_nothing_skipped_means_no_report(client):
    for path in ("/api/archives", "/api/concepts", "/api/banks", "/api/runs"):
        assert "x-coarchive-skipped" not in client.get(path).headers


def test_checkpoint_files_symlinked_out_of_the_root_are_refused(client, serve_root, reco_plus_checkpoint):
    folder = serve_root / "checkpoints" / "linked"
    folder.mkdir(parents=True)
    for source in reco_plus_checkpoint.iterdir():  # a real checkpoint outside the root, linked file by file
        (folder / source.name).symlink_to(source)
    try:
        image = next((serve_root / "benchmark" / "images").iterdir()).read_bytes()
        answer = client.post(
            "/api/segment",
            files={"file": ("a.jpg", image, "image/jpeg")},
            data={"segmenter": "reco-plus", "checkpoint": "checkpoints/linked"},
        )
        assert answer.status_code == 400, answer.text[:300]
        assert "outside the data root" in answer.json()["detail"]
        assert str(reco_plus_checkpoint) not in answer.text
    finally:
        shutil.rmtree(serve_root / "checkpoints")
