"""Smoke test of bench.index_build: 2,000 clustered vectors and a 100-image toy pool; autofaiss skipped or run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import index_build
from tests.bench.runner import NO_PEERS, PEER_VENV, markdown_table, number, run_bench

pytestmark = pytest.mark.bench
TINY = ("--n", "2000", "--dim", "32", "--max-memory", "64M")


def _check_ours(stdout: str, min_recall: float) -> list[dict[str, str]]:
    rows = markdown_table(stdout, "tool")
    ours = next(r for r in rows if r["tool"] == "coarchive index")
    assert ours["index"].startswith("IVF"), ours
    assert number(ours["build s"]) >= 0 and 0 < number(ours["peak anonymous"]) <= number(ours["peak memory"]), ours
    assert number(ours["recall@10"]) >= min_recall, ours
    query = markdown_table(stdout, "coarchive query")
    assert [r["coarchive query"].split(" ")[0] for r in query] == ["one", "batched"], query
    assert 0 < number(query[0]["p50 ms"]) <= number(query[0]["p99 ms"]), query
    assert number(query[0]["queries/s"]) > 0 and number(query[1]["queries/s"]) > 0, query
    return rows


def test_index_build_prints_its_table(tmp_path: Path) -> None:
    peers = str(tmp_path / NO_PEERS)
    args = (*TINY, "--centres", "50", "--peer-venv", peers, "--work", str(tmp_path / "w"))
    result = run_bench("index_build", *args)
    rows = _check_ours(result.stdout, 0.9)  # nprobe is tuned to recall@10 >= 0.95 on the other 200 queries
    assert any(r["tool"].startswith("autofaiss build_index: skipped, no peer virtualenv") for r in rows), rows
    assert (tmp_path / "w" / "ours" / "index.json").is_file()
    assert "2000 x 32 vectors in 50 clusters" in result.stdout
    assert np.load(tmp_path / "w" / "centres.npy").shape == (50, 32)  # --centres reached the generator
    ours = next(r for r in rows if r["tool"] == "coarchive index")
    assert " at depth 500)" in ours["index"], ours  # a quarter of the 2,000 vectors: the deep nprobe's depth
    assert not list((tmp_path / "w" / "af").glob("*.npy"))  # no peer, so no float32 copies for it


def test_index_build_refuses_no_centres(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        index_build.main(["--centres", "0"])
    assert exit_info.value.code == 2 and "--centres must be positive, got 0" in capsys.readouterr().err


def test_index_build_toy_pool(tmp_path: Path) -> None:
    peers = str(tmp_path / NO_PEERS)
    result = run_bench("index_build", "--toy-pool", "100", "--peer-venv", peers, "--work", str(tmp_path / "w"))
    assert "a 100-image toy pool embedded by the toy CLIP (100 x " in result.stdout
    _check_ours(result.stdout, 0.9)


@pytest.mark.skipif(not (PEER_VENV / "bin" / "autofaiss").is_file(), reason=f"no peer virtualenv at {PEER_VENV}")
def test_index_build_runs_autofaiss(tmp_path: Path) -> None:
    result = run_bench("index_build", *TINY, "--peer-venv", str(PEER_VENV), "--work", str(tmp_path / "w"))
    peer = next(r for r in _check_ours(result.stdout, 0.9) if r["tool"] == "autofaiss build_index")
    assert peer["index"] != "failed" and 0 <= number(peer["recall@10"]) <= 1, peer


def test_index_build_pq_rerank_and_archive_pass(tmp_path: Path) -> None:
    """A budget that forces PQ codes: the re-ranking row, recall@deep, and the timed archive pass."""
    peers = str(tmp_path / NO_PEERS)
    args = ("--vectors", "12000", "--dim", "16", "--max-memory", "200K")  # OPQ4,IVF256,PQ4x8
    args += ("--archive-concepts", "50", "--archive-k", "20")
    result = run_bench("index_build", *args, "--peer-venv", peers, "--work", str(tmp_path / "w"))
    rows = markdown_table(result.stdout, "tool")
    ours = next(r for r in rows if r["tool"] == "coarchive index")
    plain = next(r for r in rows if r["tool"] == "coarchive index, re-ranking off")
    assert ",PQ" in ours["index"] and "rerank 4 x k" in ours["index"], ours
    assert number(ours["recall@1000"]) >= number(plain["recall@1000"]), (ours, plain)
    archive = markdown_table(result.stdout, "archive pass")[0]
    assert archive["concepts"] == "50" and archive["k"] == "20" and number(archive["process s"]) > 0, archive
    assert 0 < number(archive["peak anonymous"]) <= number(archive["peak memory"]), archive


def test_index_build_stops_a_peer_past_its_timeout(tmp_path: Path) -> None:
    """--peer-timeout: a peer that runs too long is killed, and its row says so; coarchive's row stands."""
    fake = tmp_path / "fake-peers"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "autofaiss").write_text("#!/bin/sh\nsleep 120\n")
    (fake / "bin" / "autofaiss").chmod(0o755)
    args = (*TINY, "--peer-venv", str(fake), "--peer-timeout", "3", "--work", str(tmp_path / "w"))
    rows = _check_ours(run_bench("index_build", *args).stdout, 0.9)
    peer = next(r for r in rows if r["tool"] == "autofaiss build_index")
    assert peer["index"] == "did not finish, stopped" and number(peer["build s"].lstrip("> ")) >= 3, peer


def test_index_build_no_peer_leaves_the_peer_out(tmp_path: Path) -> None:
    """--no-peer: the peer is not run even where installed, and no float32 copies are written for it."""
    fake = tmp_path / "fake-peers"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "autofaiss").write_text("#!/bin/sh\nexit 3\n")
    (fake / "bin" / "autofaiss").chmod(0o755)
    args = (*TINY, "--peer-venv", str(fake), "--no-peer", "--work", str(tmp_path / "w"))
    rows = _check_ours(run_bench("index_build", *args).stdout, 0.9)
    assert [r["tool"] for r in rows] == ["coarchive index", "autofaiss build_index: skipped (--no-peer)"], rows
    assert not list((tmp_path / "w" / "af").glob("*.npy"))
