"""The demo runs end to end on a small pool and writes a report with its sections and pictures."""

from __future__ import annotations

from pathlib import Path

from pipeline.app.demo import run_demo


def test_demo_writes_a_report(tmp_path: Path) -> None:
    report = run_demo(tmp_path, pool_size=300, progress=False)
    html = report.read_text()
    assert "Embed, index, query" in html and "Dense labels" in html and "recall@10" in html
    assert html.count("data:image/png;base64") >= 6 * 8 + 6 * 3
    assert "heart (rare)" in html and "crescent (rare)" in html
    assert (tmp_path / "data" / "pool" / "00000.tar").is_file()
    assert "Concept archives" in html and "“dog”: top 10" in html
    assert html.split("“dog”: top 10", 1)[1].split("<", 1)[0].split(" — ")[1].startswith("WEAK")
    assert "Segment banks" in html and "heat map" in html
    assert (tmp_path / "data" / "banks" / "toy" / "demo" / "bank.json").is_file()
    assert "Segmentation: ReCo" in html and "ReCo, bank only + dense CRF" in html
    assert "components, step by step" in html and "seeds in the" in html and "LGC + CE" in html
    # every section with label pictures names its colours; the bank heat maps carry their scale
    assert html.count('aria-label="label colours"') >= 5 and 'aria-label="heat map scale"' in html
