"""bench.peakmem.run_measured: wall time, exit code, output tail, and the peak memory of the whole process tree."""

from __future__ import annotations

import sys

from bench.peakmem import run_measured

HOLD = "import time; x = bytearray({mib} * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.0); print('held')"


def test_peak_of_one_process() -> None:
    result = run_measured([sys.executable, "-c", HOLD.format(mib=200)])
    assert result["code"] == 0 and "held" in result["tail"]
    assert result["seconds"] >= 1.0
    assert result["peak_mib"] >= 200 and 200 <= result["peak_anon_mib"] <= result["peak_mib"]


def test_mapped_file_pages_count_in_the_peak_but_not_in_the_anonymous_peak(tmp_path) -> None:
    """Pages of a memory-mapped file are resident but file-backed: the kernel can drop them, so they are not anon."""
    data = tmp_path / "data.bin"
    data.write_bytes(b"\1" * (300 * 2**20))
    read = f"import mmap, time; f = open({str(data)!r}, 'rb'); m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)"
    read += "; s = sum(m[i] for i in range(0, len(m), 4096)); time.sleep(1.0)"
    result = run_measured([sys.executable, "-c", read])
    assert result["code"] == 0, result["tail"]
    assert result["peak_mib"] >= 300 and result["peak_anon_mib"] < 150, result


def test_peak_counts_children_and_exit_code() -> None:
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {HOLD.format(mib=150)!r}]); sys.exit(3)"
    parent = HOLD.format(mib=100).replace("print('held')", child)
    result = run_measured([sys.executable, "-c", parent])
    assert result["code"] == 3 and "held" in result["tail"]
    assert result["peak_mib"] >= 250  # parent and child at once: more than either alone


def test_timeout_kills_the_whole_tree() -> None:
    child = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(60)'])"
    result = run_measured([sys.executable, "-c", child], timeout=2)
    assert result["timed_out"] and result["code"] != 0
    assert result["seconds"] < 30  # the grandchild's sleep did not hold the pipe open
