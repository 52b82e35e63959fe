"""`coarchive serve`: the query service and web page over a data root."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `coarchive serve` on the `coarchive` parser."""
