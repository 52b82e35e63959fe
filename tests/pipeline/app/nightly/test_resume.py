"""Nightly runs end to end on a toy pool: a run killed or failed mid-way and started again gives the same bytes as
an uninterrupted one; new shards rebuild only the changed banks (bit-identical to a full rebuild); no new data is a
no-op that says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from pipeline.app.cli import main
from pipeline.app.nightly.faults import FAULT_ENV
from tests.pipeline.app.nightly.world import arrive, make_root

D1, D2, D3, D4 = "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"


def registry_of(root: Path) -> Path:
    return root / "concepts.yaml"


def _run(config: Path, run: str) -> int:
    return main(["--quiet", "run", "--config", str(config), "--run", run])


def _manifest(root: Path, run: str) -> dict:
    return json.loads((root / "runs" / run / "manifest.json").read_text())


def _outputs(root: Path) -> dict[str, object]:
    """Everything a run leaves that must not depend on interruptions, keyed by path under the root."""
    out: dict[str, object] = {}
    for path in sorted((root / "embeddings").rglob("*.npy")):
        out[str(path.relative_to(root))] = path.read_bytes()
    index = root / "index" / "toy" / "v1"
    for path in [index / "trained.index", *sorted((index / "blocks").glob("*.index"))]:
        out[str(path.relative_to(root))] = path.read_bytes()
    info = json.loads((index / "index.json").read_text())
    out["index.json"] = {k: v for k, v in info.items() if k != "seconds"}  # build phases' wall times vary
    for path in sorted((root / "archives").rglob("items.parquet")):
        out[str(path.relative_to(root))] = pq.read_table(path).to_pylist()
    for path in sorted((root / "archives").rglob("images.tar")):
        out[str(path.relative_to(root))] = path.read_bytes()
    for path in sorted((root / "banks").rglob("bank.safetensors")):
        out[str(path.relative_to(root))] = path.read_bytes()
    for path in sorted((root / "runs").rglob("results.json")):
        result = json.loads(path.read_text())
        out[str(path.relative_to(root))] = (result["miou"], result["confusion"])
    latest = json.loads((root / "runs" / "latest.json").read_text())
    out["latest"] = {k: v for k, v in latest.items() if k != "published_at"}
    return out


def test_killed_and_failed_runs_resume_to_the_same_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    base = tmp_path / "base"
    make_root(base)
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    shutil.copytree(base, clean)
    shutil.copytree(base, faulty)

    # uninterrupted: day 1 on two shards; day 2 after a third (20 images) arrived
    start = time.perf_counter()
    assert _run(clean / "nightly.yaml", D1) == 0
    first_seconds = time.perf_counter() - start
    arrive(clean)
    assert _run(clean / "nightly.yaml", D2) == 0
    day2 = _manifest(clean, D2)["stages"]
    assert day2["embed"]["counts"]["shards"] == 1 and day2["index"]["counts"]["shards"] == 1
    assert day2["index"]["counts"]["vectors"] == 220 and day2["archives"]["outcome"] == "ran"

    # day 1 killed (SIGKILL) after the index was built, before its done-marker; then resumed
    env = {**os.environ, FAULT_ENV: "index:kill"}
    cmd = [sys.executable, "-m", "pipeline.app.cli", "--quiet", "run", "--config", str(faulty / "nightly.yaml")]
    killed = subprocess.run([*cmd, "--run", D1], env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (faulty / "runs" / D1 / "stages" / "index.json").exists()
    assert _manifest(faulty, D1)["stages"]["index"]["status"] == "running"
    assert _run(faulty / "nightly.yaml", D1) == 0
    resumed = _manifest(faulty, D1)["stages"]
    assert resumed["embed"]["attempts"] == 1 and resumed["index"]["attempts"] == 2
    assert resumed["index"]["outcome"] == "ran" and resumed["index"]["counts"]["shards"] == 2
    assert [(e["attempt"], e["error"].split(":")[0]) for e in resumed["index"]["errors"]] == [(1, "interrupted")]

    # day 2 fails in the banks stage, then is run again
    arrive(faulty)
    monkeypatch.setenv(FAULT_ENV, "banks:raise")
    assert _run(faulty / "nightly.yaml", D2) == 1
    assert "injected failure in stage banks" in capsys.readouterr().err
    failed = _manifest(faulty, D2)
    assert list(failed["failures"]) == ["banks"] and failed["failures"]["banks"].startswith("InjectedFaultError")
    finished_before = {s: failed["stages"][s]["finished_at"] for s in ("embed", "index", "archives")}
    monkeypatch.delenv(FAULT_ENV)
    assert _run(faulty / "nightly.yaml", D2) == 0
    retried = _manifest(faulty, D2)
    assert {s: retried["stages"][s]["finished_at"] for s in finished_before} == finished_before  # not redone
    assert retried["stages"]["banks"]["attempts"] == 2 and retried["failures"] == {}
    (first_error,) = retried["stages"]["banks"]["errors"]  # the failed attempt's error outlives the retry
    assert first_error["attempt"] == 1 and first_error["error"] == failed["failures"]["banks"]

    # bit for bit: embeddings, index blocks, archives, images, bank tensors, evaluation, latest pointer
    clean_out, faulty_out = _outputs(clean), _outputs(faulty)
    assert clean_out.keys() == faulty_out.keys()
    for key in clean_out:
        assert clean_out[key] == faulty_out[key], key

    # day 3: one concept gets a new prompt; only its row is co-segmented again (with the context concepts it
    # depends on), and the bank equals a full rebuild bit for bit
    from archives.registry import Concept, load_registry, save_registry
    from pipeline.core.models import load_model
    from segment.bank import SegmentBank
    from segment.bank_from_archives import bank_from_run

    registry = [
        Concept(c.name, prompts=("a star",)) if c.name == "star" else c for c in load_registry(registry_of(clean))
    ]
    save_registry(registry_of(clean), registry)
    assert _run(clean / "nightly.yaml", D3) == 0
    stages = _manifest(clean, D3)["stages"]
    assert stages["index"]["outcome"] == "nothing new" and stages["archives"]["outcome"] == "ran"
    assert stages["banks"]["counts"] == {"concepts": 13, "changed": 1, "rebuilt": 6, "images": 36, "reused": 7}
    saved = SegmentBank.load(clean / "banks" / "toy" / D3)
    full, _ = bank_from_run(load_model("toy", device="cpu"), clean / "archives" / "toy" / D3, pool=clean / "pool", k=6)
    assert saved.concepts == full.concepts and saved.params == full.params
    assert torch.equal(saved.references, full.references)
    assert torch.equal(saved.text_embeddings, full.text_embeddings)

    # no new data: a second run does nothing and says so; the pointer stays
    capsys.readouterr()
    stamp = (clean / "runs" / "latest.json").stat().st_mtime_ns
    start = time.perf_counter()
    assert _run(clean / "nightly.yaml", D4) == 0
    noop_seconds = time.perf_counter() - start
    assert f"no new data since {D3}; nothing to do" in capsys.readouterr().out
    assert _manifest(clean, D4)["status"] == "noop"
    assert (clean / "runs" / "latest.json").stat().st_mtime_ns == stamp
    assert not (clean / "archives" / "toy" / D4).exists() and not (clean / "banks" / "toy" / D4).exists()
    assert _run(clean / "nightly.yaml", D3) == 0
    assert "every stage had already finished; nothing to do" in capsys.readouterr().out
    print(f"first run {first_seconds:.1f} s, no-op run {noop_seconds:.1f} s")
