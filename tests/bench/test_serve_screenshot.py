"""Smoke test of bench.serve_screenshot: the page segments a toy image in headless Chromium and is saved as a PNG."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.bench.runner import run_bench

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is missing"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed"),
]


def test_serve_screenshot_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "page.png"
    tiny = ("--pool-size", "40", "--bank-k", "2", "--work", str(tmp_path / "w"))
    result = run_bench("serve_screenshot", *tiny, "--out", str(out))
    assert f"wrote {out}" in result.stdout
    with Image.open(out) as image:
        assert image.size == (1200, 560)
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 10  # a drawn page (text, image, overlay), not a blank viewport
