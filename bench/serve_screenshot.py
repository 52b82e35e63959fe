"""Screenshot of the web page for the README: a segmentation with its overlay and legend, in headless Chromium.

usage: .venv/bin/python -m bench.serve_screenshot [--root DATA_ROOT] [--out docs/serve_page.png]
       .venv/bin/python -m bench.serve_screenshot --pool-size 40 --bank-k 2 --out /tmp/page.png    # smoke
Without --root a toy data root is built first (as bench.serve_load does). Needs Debian's chromium and playwright;
without /usr/bin/chromium it exits with status 2 and a one-line error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.serve_load import free_port, start_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
ARGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv: list[str] | None = None) -> int:
    """Serve the root, search for a concept, segment a benchmark image, save the page's screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="data root to serve (default: build a toy one)")
    parser.add_argument("--out", default="docs/serve_page.png", help="where to write the PNG")
    parser.add_argument("--image", type=int, default=2, help="which benchmark image to segment (index)")
    parser.add_argument("--pool-size", type=int, default=400, help="pool images of the toy root")
    parser.add_argument("--bank-k", type=int, default=8, help="archive images per concept in the toy root's bank")
    parser.add_argument("--model", default=None, help="--model for the server (default: toy for the toy root)")
    parser.add_argument("--work", default=None, help="folder for the toy root, the cache and the server log")
    args = parser.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        print(f"serve_screenshot: error: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    work = Path(args.work or tempfile.mkdtemp(prefix="serve_shot_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("COARCHIVE_CACHE", str(work / "cache"))
    if args.root:
        root = Path(args.root)
    else:
        from pipeline.toy.serve_root import build_toy_root

        root = build_toy_root(work / "root", pool_size=args.pool_size, bank_k=args.bank_k)
    images = sorted((root / "benchmark" / "images").glob("*.jpg"))
    if not 0 <= args.image < len(images):
        parser.error(f"--image must be in 0..{len(images) - 1} ({len(images)} benchmark images), got {args.image}")
    image = images[args.image]
    port = free_port()
    server = start_server(root, port, work / "server.log", args.model or (None if args.root else "toy"))
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
