"""Run a command and report its wall time and the peak resident memory of its whole process tree."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import psutil


def run_measured(
    command: list[str], env: dict | None = None, cwd: str | None = None, timeout: float | None = None
) -> dict:
    """Run `command`; return wall seconds, peak tree RSS in MiB, the exit code, the output tail and whether it ran
    past `timeout` seconds (then its whole process tree is killed and the code is -9)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
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
