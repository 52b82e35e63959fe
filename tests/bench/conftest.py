"""Bench smoke tests: each runs one bench script end to end at a tiny size in its own subprocess and tmp_path."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench: runs a bench/ script end to end at a tiny size (xdist-safe)")
