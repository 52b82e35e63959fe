"""The nightly config's index build choices (device, coarse quantizer, OPQ, re-ranking) reach the built index, as
`coarchive index --device/--coarse/--opq/--rerank` do."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from pipeline.app.cli import main
from tests.pipeline.app.nightly.world import make_root


def test_coarchive_run_builds_the_index_the_config_asks_for(tmp_path: Path) -> None:
    config = make_root(tmp_path, pool_size=300, shard_size=150, late=())
    settings = yaml.safe_load(config.read_text())
    # a budget too small for Flat lists forces PQ codes; no OPQ, 3 x k re-ranked candidates, on the CPU
    settings["index"] = {"max_memory": "64K", "device": "cpu", "coarse": "flat", "opq": "off", "rerank": 3}
    config.write_text(yaml.safe_dump(settings))
    stages = ["--stage", "ingest", "--stage", "embed", "--stage", "index"]
    assert main(["run", "--config", str(config), "--run", "2026-11-28", *stages, "--quiet"]) == 0
    info = json.loads((tmp_path / "index" / "toy" / "v1" / "index.json").read_text())
    assert "PQ" in info["factory"] and not info["factory"].startswith("OPQ"), info["factory"]
    assert info["rerank"] == 3 and info["opq"] is False and info["coarse"] == "flat" and info["backend"] == "faiss-cpu"
