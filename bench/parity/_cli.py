"""What every parity script's command line shares: --official and --write-fixture, a one-line refusal of a folder
that is not a checkout, and writing the fixture."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def parity_parser(prog: str, description: str, official: Path, what: str) -> argparse.ArgumentParser:
    """A parser with --official (a checkout of `what`, default `official`) and --write-fixture."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--official", type=Path, default=official, help=f"a checkout of {what} (default: {official})")
    parser.add_argument("--write-fixture", type=Path, default=None, help="store the official outputs here (.npz)")
    return parser


def refuse(error: Exception | str) -> int:
    """Say why on one stderr line ('error: ...'); the exit status of bad input, 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2


def write_fixture(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the official outputs as a compressed .npz (folders made) and say where on stderr, with its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(f"fixture written: {path} ({path.stat().st_size // 1024} KiB)", file=sys.stderr)
