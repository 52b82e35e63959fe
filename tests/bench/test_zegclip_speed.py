"""Smoke test of bench.zegclip_speed: the ViT-B/16 ZegCLIP forward pass at 64 px, once; on CUDA when there is one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.runner import markdown_table, number, run_bench

pytestmark = pytest.mark.bench
TINY = ("--size", "64", "--iterations", "1", "--warmup", "0", "--classes", "2")


def _check(stdout: str) -> dict[str, str]:
    rows = markdown_table(stdout, "device")
    assert len(rows) == 2, rows
    assert rows[1]["device"] == "GTX 1080Ti (paper)" and number(rows[1]["images/s"]) == 9.0, rows
    assert rows[0]["device"].endswith("(this run)") and "64 px" in rows[0]["setting"], rows
    assert number(rows[0]["images/s"]) > 0, rows
    return rows[0]


def test_zegclip_speed_prints_its_table(tmp_path: Path) -> None:
    row = _check(run_bench("zegclip_speed", *TINY, "--threads", "1").stdout)
    assert row["device"] == "CPU, 1 threads (this run)", row


@pytest.mark.gpu
def test_zegclip_speed_on_cuda(tmp_path: Path) -> None:
    row = _check(run_bench("zegclip_speed", *TINY, "--device", "cuda", "--amp").stdout)
    assert "fp16" in row["setting"], row
