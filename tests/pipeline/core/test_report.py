"""The report's legends and heat-map scale use the colours the pictures are painted with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.report import HEAT_STOPS, Section, colourise, concept_colours, heat_map, write_report


def test_legend_colours_are_the_label_colours() -> None:
    section = Section("labels", legend=["grass", "circle", "unknown-word"])
    colours = concept_colours(section.legend)
    for (name, css), rgb in zip(section.legend_colours, colours, strict=True):
        assert css == "#" + "".join(f"{v:02x}" for v in rgb), name
    assert section.legend_colours[0][1] == "#" + "".join(f"{v:02x}" for v in colourise(np.zeros((1, 1), int))[0, 0])


def test_report_draws_legend_and_scale(tmp_path: Path) -> None:
    sections = [Section("a", legend=["sky", "star"]), Section("b", colour_scale="probability"), Section("c")]
    html = write_report(tmp_path / "r.html", "t", sections).read_text()
    assert html.count('aria-label="label colours"') == 1 and html.count('aria-label="heat map scale"') == 1
    assert ">sky<" in html and ">star<" in html and "probability:" in html
    ends = heat_map(np.array([[0.0, 1.0]]))[0]  # the scale's two ends are the heat map's 0 and 1
    assert f"rgb({ends[0][0]},{ends[0][1]},{ends[0][2]})" in html and tuple(ends[1]) == tuple(HEAT_STOPS[-1])
