"""Screenshots of the demo report for the docs: chosen sections of report.html, clipped, in headless Chromium.

usage: .venv/bin/python -m bench.report_screenshots [--report demo_out/report.html] [--out docs/] [--only NAME]
Writes demo_report.png (the top), demo_banks.png (archives, segment bank), demo_segmenters.png (ReCo, ZegCLIP, CaR)
and reco_ablation.png (ReCo's components). Sections are found by their <h2> titles (a title may be a prefix); when
several share a picture, the height cap is shared out among them, and a tall one ends under its last table or image
grid that fits (or, if none does, mid-way with a fade). Offline: the report is opened as a file:// URL and every
http(s) request is refused. Needs Debian's chromium and playwright; without /usr/bin/chromium, or without the report,
it exits with status 2 and a one-line error.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from PIL import Image

from bench.serve_screenshot import ARGS, CHROMIUM

if TYPE_CHECKING:
    from playwright.sync_api import Page


@dataclass(frozen=True)
class Shot:
    """One picture: the report sections it shows, in page order, and whether the report's <h1> heads it."""

    name: str
    titles: tuple[str, ...]
    heading: bool = False
    tables: tuple[str, ...] = ()  # of these sections only the heading, text and table, not the legend or pictures
    width: int | None = None  # page width in px (None: --width)


SHOTS = (
    Shot("demo_report", ("Run", "Embed, index, query"), heading=True),
    Shot(  # 1240 px: one bank row (image, truth, labels, a heat map per thing) on one line, under the height cap
        "demo_banks", ("Concept archives", "Segment banks"), tables=("Concept archives",), width=1240
    ),
    Shot(
        "demo_segmenters",
        ("Segmentation: ReCo", "Segmentation: ZegCLIP", "Segmentation: CaR"),  # CaR's grids hold all three
        tables=("Segmentation: ReCo", "Segmentation: ZegCLIP"),
    ),
    Shot("reco_ablation", ("ReCo's components",)),
)
PAD = 12  # px of page kept around the shown sections
STYLE = """
body { max-width: none; margin: 0; padding: 0 16px; }
body > section { margin-top: 1.5em; position: relative; }
body > section > h2 { margin-top: 0; }
body > section.cut { overflow: hidden; }
body > section.fade::after { content: ""; position: absolute; left: 0; right: 0; bottom: 0; height: 48px;
  background: linear-gradient(rgba(255, 255, 255, 0), #fff); }
"""
GROUP = """() => {
  const titles = [];
  let current = null;
  for (const node of [...document.body.childNodes]) {
    if (node.nodeName === "H2") {
      current = document.createElement("section");
      document.body.insertBefore(current, node);
      titles.push(node.textContent.trim());
    }
    if (current) current.appendChild(node);
  }
  return titles;
}"""
SHOW = """([keep, tables, heading]) => {
  const h1 = document.querySelector("h1");
  h1.style.display = heading ? "" : "none";
  const sections = [...document.querySelectorAll("body > section")];
  sections.forEach((s, i) => { s.style.display = keep.includes(i) ? "" : "none"; });
  for (const i of tables) {
    for (const child of sections[i].children) {
      if (!["H2", "P", "TABLE"].includes(child.nodeName)) child.style.display = "none";
    }
  }
  const shown = keep.map((i) => sections[i]);
  const top = (heading ? h1 : shown[0]).getBoundingClientRect().top + scrollY;
  const bottom = shown[shown.length - 1].getBoundingClientRect().bottom + scrollY;
  const cuts = shown.map((s) => {  // where a section may end: under any shown child but its heading and an <h3>
    const start = s.getBoundingClientRect().top;
    return [...s.children].slice(1).filter((c) => c.nodeName !== "H3" && c.offsetParent !== null)
      .map((c) => c.getBoundingClientRect().bottom - start);
  });
  return {top, bottom, heights: shown.map((s) => s.getBoundingClientRect().height), cuts};
}"""
CUT = """([keep, limits]) => {
  const sections = [...document.querySelectorAll("body > section")];
  keep.forEach((i, k) => {
    if (limits[k] === null) return;
    const [height, fade] = limits[k];
    sections[i].classList.add("cut");
    if (fade) sections[i].classList.add("fade");
    sections[i].style.maxHeight = height + "px";
  });
}"""


def share_height(heights: list[float], cuts: list[list[float]], budget: float) -> list[tuple[float, bool] | None]:
    """Share a height budget among sections, shortest first, each up to an equal share of what is left.

    A section that fits is whole (None); a longer one ends at its last cut point that fits ((height, False)), or
    if none does, mid-way with a fade ((share, True)). What a section leaves unused goes to the taller ones.
    """
    limits: list[tuple[float, bool] | None] = [None] * len(heights)
    left = budget
    for done, i in enumerate(sorted(range(len(heights)), key=heights.__getitem__)):
        share = left / (len(heights) - done)
        if heights[i] <= share:
            left -= heights[i]
            continue
        fits = [cut for cut in cuts[i] if cut <= share]
        limits[i] = (max(fits), False) if fits else (share, True)
        left -= limits[i][0]
    return limits


def pick(titles: list[str], wanted: tuple[str, ...], shot: str) -> list[int]:
    """Indices of the wanted sections among the report's <h2> titles; exits with a one-line error on a miss."""
    picked = []
    for prefix in wanted:
        hits = [i for i, title in enumerate(titles) if title.startswith(prefix)]
        if len(hits) != 1:
            fail(f"{shot}: {len(hits)} sections titled {prefix!r}... in the report (it has: {'; '.join(titles)})")
        picked += hits
    return picked


def shoot(page: Page, titles: list[str], shot: Shot, max_height: int) -> bytes:
    """Show only the shot's sections, share the height cap out among them and screenshot them."""
    keep, tables = pick(titles, shot.titles, shot.name), pick(titles, shot.tables, shot.name)
    box = page.evaluate(SHOW, [keep, tables, shot.heading])
    overhead = box["bottom"] - box["top"] - sum(box["heights"])  # the <h1> and the gaps between sections
    limits = share_height(box["heights"], box["cuts"], max_height - 2 * PAD - overhead)
    page.evaluate(CUT, [keep, limits])
    box = page.evaluate(SHOW, [keep, tables, shot.heading])
    top = max(0, box["top"] - PAD)
    height = min(max_height, box["bottom"] + PAD - top)
    width = page.viewport_size["width"]
    return page.screenshot(full_page=True, clip={"x": 0, "y": top, "width": width, "height": height})


def save_png(png: bytes, path: Path, max_kb: int) -> Image.Image:
    """Write the screenshot optimised; if it is still over max_kb, as 256 colours; returns what it wrote."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.save(path, optimize=True)
    if path.stat().st_size > max_kb * 1024:
        image = image.quantize(256, method=Image.Quantize.MEDIANCUT)
        image.save(path, optimize=True)
    return image


def fail(message: str) -> NoReturn:
    """Exit with status 2 and a one-line error."""
    print(f"report_screenshots: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    """Open the report in headless Chromium and write one clipped PNG per shot into --out."""
    names = [shot.name for shot in SHOTS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", default="demo_out/report.html", help="the demo's report (make demo writes it)")
    parser.add_argument("--out", default="docs", help="folder for the PNGs")
    parser.add_argument("--only", action="append", choices=names, help="write only this picture (repeatable)")
    parser.add_argument("--width", type=int, default=1100, help="page width in px (demo_banks: 1240)")
    parser.add_argument("--max-height", type=int, default=1400, help="height cap of each picture in px")
    parser.add_argument("--max-kb", type=int, default=400, help="above this size a picture is saved with 256 colours")
    args = parser.parse_args(argv)
    report = Path(args.report)
    if not report.is_file():
        fail(f"{report} not found (run make demo first)")
    if not os.access(CHROMIUM, os.X_OK):
        fail(f"{CHROMIUM} not found (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        fail("playwright is not installed in this environment")
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for shot in SHOTS:
            if args.only and shot.name not in args.only:
                continue
            page = browser.new_page(viewport={"width": shot.width or args.width, "height": 800}, device_scale_factor=1)
            page.route(re.compile(r"^https?://"), lambda route: route.abort())
            page.goto(report.resolve().as_uri())
            page.add_style_tag(content=STYLE)
            path = out / f"{shot.name}.png"
            image = save_png(shoot(page, page.evaluate(GROUP), shot, args.max_height), path, args.max_kb)
            page.close()
            colours = ", 256 colours" if image.mode == "P" else ""
            print(f"wrote {path} ({image.width}x{image.height}, {path.stat().st_size // 1024} KB{colours})")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
