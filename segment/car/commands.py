"""`coarchive car` subcommands."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this package's subcommands on the `coarchive` parser."""
