"""Smoke test of bench.serve_load: a 40-image toy root, `coarchive serve` on a free port, 4 requests per endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.runner import markdown_table, number, run_bench

pytestmark = pytest.mark.bench


def test_serve_load_prints_its_table(tmp_path: Path) -> None:
    tiny = ("--pool-size", "40", "--bank-k", "2", "--requests", "4", "--concurrency", "2", "--warmup", "1")
    result = run_bench("serve_load", *tiny, "--seconds", "120", "--work", str(tmp_path / "w"))
    rows = markdown_table(result.stdout, "endpoint")
    assert [r["endpoint"].split(" ")[:2] for r in rows] == [["GET", "/api/query"], ["POST", "/api/segment"]], rows
    for row in rows:
        assert number(row["requests"]) == 4 and number(row["errors"]) == 0, row
        assert 0 < number(row["p50 ms"]) <= number(row["p99 ms"]) and number(row["req/s"]) > 0, row
    # the server's own counters: the 1 warm-up and 4 counted requests of each endpoint
    assert "ms mean over 5" in result.stdout.split("server-side means")[1], result.stdout
    assert (tmp_path / "w" / "server.log").is_file()
