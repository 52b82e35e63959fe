"""Smoke test of bench.device on the CPU at tiny sizes: every part runs and the JSON holds its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.runner import run_bench

pytestmark = pytest.mark.bench


def test_device_script_writes_every_part(tmp_path: Path) -> None:
    out = tmp_path / "device.json"
    tiny = ("--tiny", "--device", "cpu", "--arch", "coarchive-toy-vit", "--work", str(tmp_path / "work"))
    run_bench("device", *tiny, "--out", str(out))
    result = json.loads(out.read_text())
    assert result["machine"]["device"] == "cpu" and result["seconds"] > 0
    assert result["embed"]["images"] == 24 and result["embed"]["images_per_s"] > 0, result["embed"]
    cpu = result["index"]["cpu"]
    assert cpu["build_s"] > 0 and cpu["peak_mib"] > 0 and 0.5 < cpu["recall@10"] <= 1.0, cpu
    assert result["zegclip"]["images_per_s"] > 0 and result["car"]["seconds_per_image"] > 0


def test_device_script_refuses_cuda_without_a_gpu_and_unknown_parts(tmp_path: Path) -> None:
    import subprocess
    import sys

    import torch

    from tests.bench.runner import REPO

    bad = subprocess.run(
        [sys.executable, "-m", "bench.device", "--device", "cpu", "--parts", "embed,warp"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "unknown parts warp" in bad.stderr
    if not torch.cuda.is_available():
        cuda = subprocess.run([sys.executable, "-m", "bench.device"], cwd=REPO, capture_output=True, text=True)
        assert cuda.returncode == 2 and "no CUDA device" in cuda.stderr
