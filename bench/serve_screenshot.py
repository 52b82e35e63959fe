"""Screenshot of the web page for the README: a segmentation with its overlay and legend, in headless Chromium.

usage: .venv/bin/python -m bench.serve_screenshot [--root DATA_ROOT] [--out docs/serve_page.png]
Without --root a toy data root is built first (as bench.serve_load does). Needs Debian's chromium and playwright.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench.serve_load import free_port, start_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
ARGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    """Serve the root, search for a concept, segment a benchmark image, save the page's screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="data root to serve (default: build a toy one)")
    parser.add_argument("--out", default="docs/serve_page.png", help="where to write the PNG")
    parser.add_argument("--image", type=int, default=2, help="which benchmark image to segment (index)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="serve_shot_"))
    os.environ.setdefault("COARCHIVE_CACHE", str(work / "cache"))
    if args.root:
        root = Path(args.root)
    else:
        from pipeline.serve.toy_root import build_toy_root

        root = build_toy_root(work / "root", pool_size=400)
    image = sorted((root / "benchmark" / "images").glob("*.jpg"))[args.image]
    port = free_port()
    server = start_server(root, port, work / "server.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 560})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("body[data-ready=true]")
            page.click("button[data-tab=segment]")
            page.set_input_files("#seg-file", str(image))
            page.uncheck("#seg-saliency")  # bank only + CRF: the demo's best ReCo row on the toy world
            page.check("#seg-crf")
            page.click("#seg-go")
            page.wait_for_selector("body[data-segmented=true]")
            page.screenshot(path=args.out)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
