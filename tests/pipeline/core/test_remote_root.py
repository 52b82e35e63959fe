"""RemoteRoot on fsspec's in-memory filesystem: pull fetches only what changed, push uploads only what a command
wrote (markers last), nothing in the bucket is deleted, and a deleted local file is not fetched back."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from pipeline.core.remote_root import RemoteRoot, Transfer, matches


@pytest.fixture()
def bucket() -> str:
    """A fresh bucket name on memory:// (the in-memory filesystem is shared by the whole process)."""
    return f"bucket-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def mem() -> fsspec.AbstractFileSystem:
    return fsspec.filesystem("memory")


def _fill(mem, bucket: str) -> None:
    mem.pipe(f"/{bucket}/root/embeddings/toy/00000.npy", b"vectors")
    mem.pipe(f"/{bucket}/root/embeddings/toy/00000.parquet", b"rows")
    mem.pipe(f"/{bucket}/root/index/toy/v1/index.json", b"{}")
    mem.pipe(f"/{bucket}/root/pool/00000.tar", b"tar" * 100)
    mem.pipe(f"/{bucket}/root/concepts.yaml", b"- sky\n")
    mem.pipe(f"/{bucket}/other/elsewhere.txt", b"not under the root")


def test_patterns_select_files() -> None:
    assert matches("embeddings/toy/00000.npy", "embeddings/*") and matches("a/b", "*") and matches("a/b", "")
    assert matches("pool/00001_stats.json", "pool/*_stats.json") and not matches("pool/00001.tar", "pool/*.json")
    assert matches("concepts.yaml", "concepts.yaml") and not matches("concepts.yaml.bak", "concepts.yaml")
    assert matches("index/toy/v1/index.json", "index") and not matches("indexes/x", "index")


def test_pull_fetches_what_is_selected_and_only_what_changed(mem, bucket: str, tmp_path: Path) -> None:
    _fill(mem, bucket)
    root = RemoteRoot(f"memory://{bucket}/root", tmp_path)
    done = root.pull(["embeddings/*", "concepts.yaml"])
    assert (done.files, done.unchanged) == (3, 0)
    assert (root.local / "embeddings/toy/00000.npy").read_bytes() == b"vectors"
    assert (root.local / "concepts.yaml").read_bytes() == b"- sky\n"
    assert not (root.local / "pool").exists() and not (root.local / "index").exists()
    assert root.local == tmp_path / root.cache.name / "data" / "root"  # data/ mirrors the bucket

    again = root.pull(["embeddings/*", "concepts.yaml"])
    assert (again.files, again.unchanged) == (0, 3)
    mem.pipe(f"/{bucket}/root/concepts.yaml", b"- sky\n- grass\n")  # changed in the bucket
    third = root.pull(["*"])
    assert third.files == 3 and third.unchanged == 2  # concepts.yaml, the index and the pool shard
    assert (root.local / "concepts.yaml").read_bytes() == b"- sky\n- grass\n"
    assert not (root.local.parent / "other").exists()  # outside the root


def test_a_local_copy_changed_by_hand_is_fetched_again(mem, bucket: str, tmp_path: Path) -> None:
    _fill(mem, bucket)
    root = RemoteRoot(f"memory://{bucket}/root", tmp_path)
    root.pull(["concepts.yaml"])
    (root.local / "concepts.yaml").write_bytes(b"edited")
    assert root.pull(["concepts.yaml"]).files == 1  # the bucket is the truth
    assert (root.local / "concepts.yaml").read_bytes() == b"- sky\n"


def test_push_uploads_new_and_changed_files_markers_last(mem, bucket: str, tmp_path: Path) -> None:
    _fill(mem, bucket)
    root = RemoteRoot(f"memory://{bucket}/root", tmp_path)
    root.pull(["*"])
    before = root.snapshot()
    index = root.local / "index" / "toy" / "v2"
    index.mkdir(parents=True)
    (index / "merged.index").write_bytes(b"faiss")
    (index / "index.json").write_bytes(b'{"count": 1}')
    (root.local / "concepts.yaml").write_bytes(b"- sky\n- heart\n")
    (index / ".index.json.1234.tmp").write_bytes(b"half")  # a temporary file is never uploaded
    done = root.push(before)
    assert (done.files, done.unchanged) == (3, 4)
    assert mem.cat(f"/{bucket}/root/index/toy/v2/merged.index") == b"faiss"
    assert mem.cat(f"/{bucket}/root/concepts.yaml") == b"- sky\n- heart\n"
    assert not mem.exists(f"/{bucket}/root/index/toy/v2/.index.json.1234.tmp")
    created = {p: mem.info(f"/{bucket}/root/{p}")["created"] for p in ("index/toy/v2/merged.index", "concepts.yaml")}
    created["index.json"] = mem.info(f"/{bucket}/root/index/toy/v2/index.json")["created"]
    assert created["index/toy/v2/merged.index"] < min(created["concepts.yaml"], created["index.json"])  # data first
    assert root.push(before).files == 0  # nothing new: nothing uploaded
    assert root.pull(["*"]).files == 0  # what was pushed is known: nothing fetched back


def test_nothing_in_the_bucket_is_deleted_and_a_deleted_file_is_not_fetched_back(mem, bucket: str, tmp_path) -> None:
    _fill(mem, bucket)
    root = RemoteRoot(f"memory://{bucket}/root", tmp_path)
    root.pull(["*"])
    before = root.snapshot()
    (root.local / "pool" / "00000.tar").unlink()
    done = root.push(before)
    assert done.kept == 1 and mem.exists(f"/{bucket}/root/pool/00000.tar")
    assert root.pull(["*"]).files == 0 and not (root.local / "pool" / "00000.tar").exists()
    mem.pipe(f"/{bucket}/root/pool/00000.tar", b"a new version")  # changed in the bucket: fetched again
    assert root.pull(["*"]).files == 1 and (root.local / "pool" / "00000.tar").read_bytes() == b"a new version"


def test_a_file_gone_from_the_bucket_leaves_the_local_copy(mem, bucket: str, tmp_path: Path) -> None:
    _fill(mem, bucket)
    root = RemoteRoot(f"memory://{bucket}/root", tmp_path)
    root.pull(["*"])
    (root.local / "runs").mkdir()
    (root.local / "runs" / "unpushed.json").write_text("{}")  # written locally, not uploaded yet: kept
    mem.rm(f"/{bucket}/root/index/toy/v1/index.json")
    done = root.pull(["*"])
    assert done.removed == 1 and not (root.local / "index/toy/v1/index.json").exists()
    assert (root.local / "runs" / "unpushed.json").is_file()
    assert root.push().files == 1 and mem.exists(f"/{bucket}/root/runs/unpushed.json")


def test_roots_of_one_bucket_share_one_local_copy(mem, bucket: str, tmp_path: Path) -> None:
    _fill(mem, bucket)
    root = RemoteRoot(f"memory://{bucket}/root", tmp_path)
    pool = RemoteRoot(f"memory://{bucket}/root/pool/", tmp_path)
    assert pool.local == root.local / "pool"
    assert pool.pull(["*"]).files == 1
    assert root.pull(["pool/*"]).files == 0  # already there, and known


def test_refresh_pulls_on_a_timer(mem, bucket: str, tmp_path: Path) -> None:
    _fill(mem, bucket)
    root = RemoteRoot(f"memory://{bucket}/root", tmp_path)
    root.pull(["*"])
    pulled: list[Transfer] = []
    stop = root.refresh_every(0.05, ["*"], on_pull=pulled.append)
    mem.pipe(f"/{bucket}/root/runs/r2/manifest.json", b"{}")
    try:
        for _ in range(200):
            if any(p.files for p in pulled):
                break
            stop.wait(0.05)
    finally:
        stop.set()
    assert any(p.files for p in pulled) and (root.local / "runs/r2/manifest.json").read_bytes() == b"{}"


def test_not_a_remote_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a remote URL"):
        RemoteRoot(f"file://{tmp_path}", tmp_path)
    with pytest.raises(ValueError, match="not a remote URL"):
        RemoteRoot(str(tmp_path), tmp_path)
