"""Smoke test of bench.report_screenshots: a tiny report from the project's writer, pictured in headless Chromium."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.report_screenshots import SHOTS, main, share_height
from pipeline.core.report import LABEL_COLOURS, Section, Tile, data_uri, write_report
from tests.bench.runner import REPO, run_bench

CHROMIUM = "/usr/bin/chromium"
NO_CHROMIUM = not os.access(CHROMIUM, os.X_OK)
NO_PLAYWRIGHT = importlib.util.find_spec("playwright") is None
TITLES = [  # the demo's section titles, in its order
    "Run",
    "Embed, index, query",
    "Concept archives",
    "Segment banks",
    "Segmentation: ReCo",
    "ReCo's components, step by step",
    "Segmentation: ZegCLIP",
    "Segmentation: CaR beside ReCo",
    "Dense labels from the toy CLIP (MaskCLIP value path)",
]


def _tiny_report(path: Path, grids: int) -> Path:
    """A report with the demo's section titles, each with text, a table, a legend and `grids` image grids."""
    rng = np.random.default_rng(0)
    sections = []
    for title in TITLES:
        tiles = [
            Tile(data_uri(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), 2), f"#{i}", i % 2 == 0) for i in range(6)
        ]
        sections.append(
            Section(
                title,
                f"what {title} shows",
                [["row", "mIoU"], ["a", "0.50"], ["b", "0.25"]],
                [(f"scene {n}", tiles) for n in range(grids)],
                legend=list(LABEL_COLOURS)[:4],
                colour_scale="how sure",
            )
        )
    return write_report(path, "tiny demo", sections)


@pytest.mark.bench
@pytest.mark.skipif(NO_CHROMIUM, reason=f"{CHROMIUM} is missing")
@pytest.mark.skipif(NO_PLAYWRIGHT, reason="playwright is not installed")
def test_report_screenshots_writes_every_picture(tmp_path: Path) -> None:
    report = _tiny_report(tmp_path / "report.html", grids=12)  # Embed alone runs past the 1400 px cap
    out = tmp_path / "shots"
    result = run_bench("report_screenshots", "--report", str(report), "--out", str(out))
    for shot in SHOTS:
        path = out / f"{shot.name}.png"
        assert f"wrote {path} (" in result.stdout
        assert path.stat().st_size < 400 * 1024
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.width == (shot.width or 1100)
            assert 100 < image.height <= 1400
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        assert pixels.std() > 10, shot.name  # drawn text, tables and tiles, not a blank page


def test_missing_report_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--report", str(tmp_path / "none.html"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("report_screenshots: error:") and "none.html not found" in err and "\n" not in err


def test_share_height_keeps_short_sections_and_cuts_tall_ones_at_a_boundary() -> None:
    limits = share_height([100, 900, 2000], [[50, 100], [300, 600, 900], [700, 1500, 2000]], budget=1000)
    assert limits[0] is None  # 100 fits whole; 900 left for two: 450 each
    assert limits[1] == (300, False)  # the lowest boundary under 450; it leaves 600 to the last
    assert limits[2] == (600, True)  # no boundary of the tallest under 600: cut mid-way with a fade
    assert share_height([500, 80], [[400, 500], [80]], budget=1000) == [None, None]  # both fit whole


def test_every_shot_title_is_a_demo_section() -> None:
    sources = "\n".join(p.read_text() for p in (REPO / "pipeline" / "app").glob("demo*.py"))
    for shot in SHOTS:
        for title in (*shot.titles, *shot.tables):
            assert re.search(rf"Section\(\s*\"{re.escape(title)}", sources), f"{shot.name}: no demo section {title!r}"
