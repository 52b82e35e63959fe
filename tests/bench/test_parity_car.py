"""Smoke test of bench.parity.car: runs it as a user types it against a scratch copy of the official CaR code
(CAR_OFFICIAL, else /tmp/official/car); skipped when there is none (the fixture test runs without it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench.parity_checks import refusal
from tests.bench.runner import markdown_table, number, run_bench

pytestmark = pytest.mark.bench
OFFICIAL = Path(os.environ.get("CAR_OFFICIAL", "/tmp/official/car"))


@pytest.mark.skipif(not (OFFICIAL / "modeling/model/car.py").is_file(), reason=f"no official CaR code at {OFFICIAL}")
def test_parity_car_prints_its_table(tmp_path: Path) -> None:
    fixture = tmp_path / "car.npz"
    result = run_bench("parity.car", "--official", str(OFFICIAL), "--write-fixture", str(fixture))
    rows = {(r["image"], r["stage"]): r for r in markdown_table(result.stdout, "image")}
    assert number(rows[("0", "label map, no CRF")]["identical"]) == 1.0, rows
    assert number(rows[("0", "label map, CRF on the RGB image")]["identical"]) == 1.0, rows
    assert number(rows[("0", "it 1 classifier scores")]["max abs diff"]) < 1e-6, rows
    assert fixture.is_file() and fixture.stat().st_size < 600_000


def test_parity_car_names_a_missing_checkout(tmp_path: Path) -> None:
    assert "not a CaR checkout" in refusal("car", tmp_path / "none")
