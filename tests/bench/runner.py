"""Run a bench script as a user types it (`python -m bench.NAME ...` from the repo root) and read its tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NO_PEERS = "no-peer-venv"  # a --peer-venv under tmp_path that never exists: the peer rows must say "skipped"
PEER_VENV = Path.home() / ".cache/coarchive-peers/venv"


def run_bench(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`sys.executable -m bench.NAME ARGS` in the repo root, as a user types it; fails the test on a bad exit.

    Tests pass the script's own --work / --out under tmp_path (TMPDIR stays: Chromium's socket path must be short).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", f"bench.{name}", *args]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(command)} exited with {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def markdown_table(text: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the markdown table in `text` whose header's first cell is `first_header`, as header -> cell."""
    lines = [line.strip() for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("|") and _cells(line)[:1] == [first_header]]
    assert starts, f"no table with first column {first_header!r} in:\n{text}"
    header = _cells(lines[starts[0]])
    assert set(lines[starts[0] + 1].replace(" ", "")) <= set("|-:"), f"no separator under {header} in:\n{text}"
    rows = []
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        assert len(cells) == len(header), f"row {line!r} has {len(cells)} cells, the header {len(header)}"
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def number(cell: str) -> float:
    """The leading number of a table cell such as '1.9', '**216**', '1384 MiB' or '17.2x'; fails on anything else."""
    head = cell.replace("*", "").replace(",", "").split(" ")[0].removesuffix("x")
    try:
        return float(head)
    except ValueError:
        raise AssertionError(f"not a number: {cell!r}") from None


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]
