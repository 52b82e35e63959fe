"""A nightly run whose embed and index tasks go to a Dask LocalCluster gives what an in-process run gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from pipeline.app.cli import main
from tests.pipeline.app.nightly.world import make_root

RUN = "2026-11-21"


def _run_with(root: Path, executor: dict) -> dict:
    config = yaml.safe_load((root / "nightly.yaml").read_text())
    config["executor"] = executor
    (root / "nightly.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["--quiet", "run", "--config", str(root / "nightly.yaml"), "--run", RUN]) == 0
    return json.loads((root / "runs" / RUN / "manifest.json").read_text())


def test_a_run_on_a_dask_cluster_matches_an_in_process_run(tmp_path: Path) -> None:
    base = tmp_path / "base"
    make_root(base, pool_size=120, shard_size=40, late=())
    local, dask = tmp_path / "local", tmp_path / "dask"
    shutil.copytree(base, local)
    shutil.copytree(base, dask)
    on_local = _run_with(local, {"kind": "local"})
    on_dask = _run_with(dask, {"kind": "dask", "workers": 2})
    assert on_dask["config"]["executor"]["kind"] == "dask"
    assert on_dask["stages"]["embed"]["counts"]["shards"] == on_local["stages"]["embed"]["counts"]["shards"] == 3
    assert on_dask["stages"]["index"]["counts"]["vectors"] == 120
    for path in sorted((local / "embeddings").rglob("*.npy")):  # worker processes may round differently
        np.testing.assert_allclose(np.load(dask / path.relative_to(local)), np.load(path), atol=2e-3)
    for path in sorted((local / "embeddings").rglob("*.parquet")):
        assert pq.read_table(dask / path.relative_to(local)).column("id") == pq.read_table(path).column("id")
    archives = sorted((local / "archives").rglob("items.parquet"))
    assert len(archives) == 13
    for path in archives:
        ids = pq.read_table(path).column("id").to_pylist()
        assert pq.read_table(dask / path.relative_to(local)).column("id").to_pylist() == ids, path.parent.name
