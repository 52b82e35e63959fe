"""What the parity smoke tests share: the refusal of a folder that is no checkout, and a remade fixture's check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.bench.runner import REPO


def refusal(name: str, folder: Path) -> str:
    """`python -m bench.parity.NAME --official FOLDER` as a user types it, for a folder that is no checkout: it must
    exit 2 with one `error:` line; that line."""
    command = [sys.executable, "-m", f"bench.parity.{name}", "--official", str(folder)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(folder) in last, result.stderr
    return last


def assert_same_fixture(made: Path, stored: Path, skip: tuple[str, ...] = ()) -> None:
    """The remade fixture holds the stored one's arrays: floats to 1e-6 (float32 runs differ in the last bits on
    another CPU), everything else exactly; keys in `skip` (such as the command line) are not compared."""
    with np.load(made) as new, np.load(stored) as old:
        assert sorted(new.files) == sorted(old.files)
        for key in old.files:
            if key in skip:
                continue
            if old[key].dtype.kind == "f":
                np.testing.assert_allclose(new[key], old[key], rtol=0, atol=1e-6, err_msg=key)
            else:
                np.testing.assert_array_equal(new[key], old[key], err_msg=key)
