"""Smoke test of bench.parity.zegclip with its parity bounds: needs a checkout of ZiqinZhou66/ZegCLIP
(COARCHIVE_ZEGCLIP_OFFICIAL or /tmp/official/zegclip); without one only the refusal of a non-checkout runs. The
fixture test (tests/segment/parity/test_zegclip_parity.py) needs no checkout at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench.parity_checks import assert_same_fixture, refusal
from tests.bench.runner import REPO, markdown_table, number, run_bench

pytestmark = pytest.mark.bench
OFFICIAL = Path(os.environ.get("COARCHIVE_ZEGCLIP_OFFICIAL", "/tmp/official/zegclip"))
FIXTURE = REPO / "tests/segment/parity/fixtures/zegclip_official.npz"


def test_parity_zegclip_refuses_a_folder_that_is_not_a_checkout(tmp_path: Path) -> None:
    assert f"no ZegCLIP checkout at {tmp_path}" in refusal("zegclip", tmp_path)


@pytest.mark.skipif(
    not (OFFICIAL / "models/segmentor/zegclip.py").is_file(), reason=f"no ZiqinZhou66/ZegCLIP checkout at {OFFICIAL}"
)
def test_parity_zegclip_matches_and_remakes_the_fixture(tmp_path: Path) -> None:
    fixture = tmp_path / "zegclip.npz"
    result = run_bench("parity.zegclip", "--official", str(OFFICIAL), "--write-fixture", str(fixture))
    rows = markdown_table(result.stdout, "stage")
    for row in rows:
        if row["what"].startswith("label map") and "deliberate" not in row["stage"]:
            assert row["identical"] == "1.0000", row
        elif row["stage"] not in ("inputs", "imported checkpoint", "small window (deliberate)"):
            assert number(row["max abs diff"]) < 1e-12, row
    assert "mmseg.models.builder" in result.stdout  # the list of what was stood in
    assert_same_fixture(fixture, FIXTURE, skip=("command",))  # the stored official numbers are reproducible
