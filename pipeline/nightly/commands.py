"""`coarchive run`: one incremental nightly run of every stage over a data root."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `coarchive run` on the `coarchive` parser."""
