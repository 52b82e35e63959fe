"""Run a command and report its wall time and the peak resident memory of its whole process tree.

Resident memory counts the pages of memory-mapped files a process has touched (an index's on-disk lists, the stored
embeddings that re-ranking reads); the kernel can drop those and read them again, so the anonymous peak (resident
memory less file-backed pages: what the machine must really hold) is reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import psutil


def run_measured(
    command: list[str], env: dict | None = None, cwd: str | None = None, timeout: float | None = None
) -> dict:
    """Run `command`; return wall seconds, peak tree RSS and peak anonymous memory in MiB, the exit code, the output
    tail and whether it ran past `timeout` seconds (then its whole process tree is killed and the code is -9)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, peak_anon = 0, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_anon
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                infos = [p.memory_info() for p in tree if p.is_running()]
                peak = max(peak, sum(m.rss for m in infos))
                peak_anon = max(peak_anon, sum(m.rss - getattr(m, "shared", 0) for m in infos))  # Linux: file pages
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timed_out = False
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_tree(process.pid)
        output, _ = process.communicate()
    done.set()
    sampler.join()
    return {
        "seconds": time.perf_counter() - start,
        "peak_mib": peak / 2**20,
        "peak_anon_mib": peak_anon / 2**20,
        "code": process.returncode,
        "tail": output[-3000:],
        "timed_out": timed_out,
    }


def _kill_tree(pid: int) -> None:
    """Kill a process and all its descendants."""
    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for process in tree:
        try:
            process.kill()
        except psutil.Error:
            pass


def last_json(measured: dict) -> dict:
    """The last line of a measured child's output that is a JSON object (how the children report their numbers)."""
    return json.loads([line for line in measured["tail"].splitlines() if line.startswith("{")][-1])
