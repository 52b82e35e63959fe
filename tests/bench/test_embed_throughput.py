"""Smoke test of bench.embed_throughput: 40 toy images, in process (threads, then one loader process), the loader's
ceiling for both, the peer row skipped or (with its venv) run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.bench.runner import NO_PEERS, PEER_VENV, markdown_table, number, run_bench

pytestmark = pytest.mark.bench
TINY = ("--images", "40", "--per-shard", "20", "--batch-size", "16", "--dask-workers", "0", "--loader-workers", "0,1")


def test_embed_throughput_prints_its_table(tmp_path: Path) -> None:
    result = run_bench(
        "embed_throughput", *TINY, "--peer-venv", str(tmp_path / NO_PEERS), "--work", str(tmp_path / "w")
    )
    rows = markdown_table(result.stdout, "tool")
    ours = [r for r in rows if r["tool"].startswith("coarchive embed, batch 16")]
    assert [r["tool"].rsplit(", ", 1)[1] for r in ours] == ["2 decode threads", "1 loader processes"], rows
    for row in ours:
        seconds, rate = number(row["wall s"]), number(row["images/s"])
        assert seconds > 0 and rate > 0 and abs(rate - 40 / seconds) <= 1, ours
        assert number(row["peak memory (process tree)"]) > 50, ours  # MiB: a python with torch, not a dead process
    ceilings = markdown_table(result.stdout, "loader ceiling")
    assert len(ceilings) == 2 and all(r["loader ceiling"].startswith("loader only") for r in ceilings), ceilings
    assert all(number(r["images/s (stage loop)"]) >= number(r["images/s (whole process)"]) > 0 for r in ceilings)
    notes = [r["tool"] for r in rows if "skipped, no peer virtualenv" in r["tool"] or "not run" in r["tool"]]
    assert any(n.startswith("clip-retrieval inference: skipped") for n in notes), rows
    assert any("Dask" in n for n in notes), rows
    vectors = [np.load(p) for p in sorted((tmp_path / "w" / "ours_local" / "embeddings").glob("*/*.npy"))]
    assert sum(len(v) for v in vectors) == 40
    with_process = [np.load(p) for p in sorted((tmp_path / "w" / "ours_lw1" / "embeddings").glob("*/*.npy"))]
    assert all(np.array_equal(a, b) for a, b in zip(vectors, with_process, strict=True))
    assert np.allclose(np.linalg.norm(np.concatenate(vectors).astype(np.float32), axis=1), 1, atol=1e-2)
    bf16_row = [r for r in rows if r["tool"] == "coarchive embed, same, 2 decode threads, --precision bf16"]
    assert len(bf16_row) == 1 and number(bf16_row[0]["images/s"]) > 0, rows
    bf16 = np.concatenate([np.load(p) for p in sorted((tmp_path / "w" / "ours_bf16" / "embeddings").glob("*/*.npy"))])
    cosines = (bf16.astype(np.float32) * np.concatenate(vectors).astype(np.float32)).sum(axis=1)
    assert cosines.min() > 0.99, cosines.min()  # the same embeddings, to bf16's precision


@pytest.mark.skipif(not (PEER_VENV / "bin" / "python").is_file(), reason=f"no peer virtualenv at {PEER_VENV}")
def test_embed_throughput_runs_clip_retrieval(tmp_path: Path) -> None:
    args = (*TINY, "--lower-precision", "none", "--peer-venv", str(PEER_VENV), "--work", str(tmp_path / "w"))
    rows = markdown_table(run_bench("embed_throughput", *args).stdout, "tool")
    assert not any("--precision" in r["tool"] for r in rows), rows  # --lower-precision none: no bf16 row
    peers = [r for r in rows if r["tool"].startswith("clip-retrieval inference")]
    assert len(peers) == 4 and peers[-1]["tool"].endswith("OMP_WAIT_POLICY=PASSIVE"), rows
    assert all(number(r["images/s"]) > 0 for r in peers), peers
