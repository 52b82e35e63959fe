"""Dask worker resources: a task holding GPU=1 runs alone on a worker that declares one GPU, whatever its threads."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from pipeline.core.executors import DaskExecutor, check_worker_resources, make_executor, parse_resources


def _interval(item: int) -> tuple[float, float]:
    start = time.time()
    time.sleep(0.4)
    return start, time.time()


def _overlaps(intervals: list[tuple[float, float]]) -> int:
    return sum(1 for (_, end), (start, _) in itertools.pairwise(sorted(intervals)) if start < end)


def test_gpu_resources_run_one_task_per_gpu_at_a_time() -> None:
    """One worker with 2 threads: without resources its tasks overlap; holding its one GPU they queue."""
    executor = DaskExecutor(workers=1, threads_per_worker=2, resources={"GPU": 1})
    try:
        with_gpu = [result for _, result in executor.map_unordered(_interval, list(range(4)))]
        free = executor.client.gather(executor.client.map(_interval, range(4), pure=False))  # no resources held
        info = executor.client.scheduler_info()["workers"]
    finally:
        executor.close()
    assert [w["resources"] for w in info.values()] == [{"GPU": 1}]
    assert _overlaps(with_gpu) == 0 and _overlaps(free) >= 1


def test_a_scheduler_whose_workers_lack_the_resource_is_refused() -> None:
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        with pytest.raises(ValueError, match=r"declares resources GPU=1: start workers with `dask worker"):
            check_worker_resources(client, {"GPU": 1})
        check_worker_resources(client, {})


def test_parse_resources() -> None:
    assert parse_resources("GPU=1") == {"GPU": 1.0} and parse_resources(" GPU=2, MEM=0.5 ") == {"GPU": 2, "MEM": 0.5}
    assert parse_resources(None) is None and parse_resources("") is None
    for bad in ("GPU", "GPU=0", "=1", "GPU=x"):
        with pytest.raises(ValueError, match="resources must look like GPU=1"):
            parse_resources(bad)
    with pytest.raises(ValueError, match="need a Dask executor"):
        make_executor("local", resources={"GPU": 1})


def test_embed_on_gpu_declaring_workers_with_loader_processes_is_identical(toy_world: Path, tmp_path: Path) -> None:
    """The embed stage on a LocalCluster whose workers declare GPU=1: loader processes start inside the workers."""
    from pipeline.core.executors import LocalExecutor
    from pipeline.core.models import ModelRef
    from pipeline.core.stage import run_stage
    from pipeline.pool.embed import EmbedStage

    def stage(root: str) -> EmbedStage:
        return EmbedStage(str(toy_world / "pool"), str(tmp_path / root), ModelRef("toy"), loader_workers=1)

    run_stage(stage("local"), LocalExecutor(), progress=False)
    executor = make_executor("dask", workers=2, resources={"GPU": 1})
    try:
        report = run_stage(stage("dask"), executor, progress=False)
    finally:
        executor.close()
    assert not report.failed and len(report.done) == 3
    for name in ("00000.npy", "00001.parquet", "00002.npy"):
        local, dask = (tmp_path / r / "embeddings" / "toy" / name for r in ("local", "dask"))
        assert local.read_bytes() == dask.read_bytes()
