"""Smoke test of bench.parity.reco: needs a checkout of NoelShin/reco (COARCHIVE_RECO_OFFICIAL or /tmp/official/reco).

Without one, only the refusal of a folder that is not a checkout runs; the fixture test (tests/segment/parity) needs
no checkout at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench.parity_checks import assert_same_fixture, refusal
from tests.bench.runner import REPO, markdown_table, number, run_bench

pytestmark = pytest.mark.bench

OFFICIAL = Path(os.environ.get("COARCHIVE_RECO_OFFICIAL", "/tmp/official/reco"))
FIXTURE = REPO / "tests/segment/parity/fixtures/reco.npz"


def test_parity_reco_refuses_a_folder_that_is_not_a_checkout(tmp_path: Path) -> None:
    assert refusal("reco", tmp_path).startswith("error: not a checkout of NoelShin/reco")


@pytest.mark.skipif(not (OFFICIAL / "networks/reco.py").is_file(), reason=f"no NoelShin/reco checkout at {OFFICIAL}")
def test_parity_reco_prints_its_table_and_remakes_the_fixture(tmp_path: Path) -> None:
    fixture = tmp_path / "reco.npz"
    result = run_bench("parity.reco", "--official", str(OFFICIAL), "--write-fixture", str(fixture))
    rows = {(r["run"], r["stage"]): r for r in markdown_table(result.stdout, "run")}
    parity = "float64, seed rule official"
    for stage in ("seeds", "label map", "CRF label map"):
        assert rows[(parity, stage)]["identical"] == "1.0000", rows[(parity, stage)]
    for stage in ("lgc", "weights", "reference"):
        assert number(rows[(parity, stage)]["max abs diff"]) < 1e-12, rows[(parity, stage)]
    assert number(rows[("encoder", "features (unit, float32)")]["max abs diff"]) < 2e-6
    assert_same_fixture(fixture, FIXTURE)  # the stored official numbers are reproducible
