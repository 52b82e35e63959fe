"""Smoke test of bench.parity.zegclip: the official ZegCLIP against coarchive's, when the official checkout is there."""

from __future__ import annotations

import pytest

from bench.parity.zegclip import DEFAULT_OFFICIAL
from tests.bench.runner import markdown_table, number, run_bench

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(
        not (DEFAULT_OFFICIAL / "models" / "segmentor" / "zegclip.py").is_file(),
        reason=f"no official ZegCLIP checkout at {DEFAULT_OFFICIAL}",
    ),
]


def test_parity_zegclip_prints_its_table() -> None:
    result = run_bench("parity.zegclip", "--threads", "1")
    rows = markdown_table(result.stdout, "stage")
    assert list(rows[0]) == ["stage", "what", "max abs diff", "identical"], rows[0]
    diffs = [number(r["max abs diff"]) for r in rows if r["max abs diff"] != "-"]
    assert len(diffs) >= 5 and all(d >= 0 for d in diffs), rows
    assert all(0 <= number(r["identical"]) <= 1 for r in rows), rows
