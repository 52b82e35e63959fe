"""Smoke test of bench.car_speed: one 32-px scene, two concepts, the toy ViT; both implementations agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.runner import markdown_table, number, run_bench

pytestmark = pytest.mark.bench


def test_car_speed_prints_its_table(tmp_path: Path) -> None:
    tiny = ("--arch", "coarchive-toy-vit", "--images", "1", "--size", "32", "--concepts", "2", "--iterations", "1")
    result = run_bench("car_speed", *tiny, "--threads", "1")
    rows = markdown_table(result.stdout, "image")
    assert [r["image"] for r in rows] == ["0", "all"], rows
    total = rows[-1]
    assert number(total["reference s"]) > 0 and number(total["batched s"]) > 0, total
    assert number(total["speed-up"]) > 0, total
    assert rows[0]["identical masks (pixel agreement)"] == "True (1.0000)", rows  # same model, float64: same masks
    assert total["identical masks (pixel agreement)"] == "True", total
