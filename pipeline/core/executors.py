"""Executors run a stage's tasks: in process (tests, debugging) or on a Dask cluster (LocalCluster or a scheduler)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pipeline.core.registry import Registry


class Executor(Protocol):
    """Runs `fn` on every item and yields (item, result or the exception it raised), in completion order."""

    def map_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[tuple[Any, Any]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs tasks one after another in this process."""

    def map_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield (item, fn(item)) or (item, exception) in item order."""
        for item in items:
            try:
                yield item, fn(item)
            except Exception as error:  # a failed task is reported, never fatal to the run
                yield item, error

    def close(self) -> None:
        """Nothing to release."""


class DaskExecutor:
    """Runs tasks on dask.distributed workers: a LocalCluster by default, or an existing scheduler's cluster.

    `resources` (e.g. {"GPU": 1}) is what every task holds while it runs: a worker runs at once only as many
    tasks as its declared resources allow (`dask worker --resources GPU=1`: one embed task per GPU). The
    LocalCluster's workers declare the same resources, once each. LocalCluster workers are started non-daemonic,
    so a task may start processes of its own (the embed stage's loader workers).
    """

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int = 2,
        threads_per_worker: int = 1,
        resources: dict[str, float] | None = None,
    ) -> None:
        import dask
        from dask.distributed import Client, LocalCluster

        self.resources = dict(resources) if resources else None
        if scheduler:
            self.cluster = None
            self.client = Client(scheduler)
            if self.resources:
                check_worker_resources(self.client, self.resources)
        else:
            with dask.config.set({"distributed.worker.daemon": False}):
                self.cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads_per_worker,
                    processes=True,
                    dashboard_address=None,
                    resources=self.resources,
                )
            self.client = Client(self.cluster)

    def map_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[tuple[Any, Any]]:
        """Submit every item, then yield (item, result or exception) as tasks finish."""
        from dask.distributed import as_completed

        futures = {self.client.submit(fn, item, pure=False, resources=self.resources): item for item in items}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:
                yield futures[future], error

    def close(self) -> None:
        """Shut the client and, if this executor started it, the cluster."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class DaskCudaExecutor(DaskExecutor):
    """One Dask worker per visible GPU (dask-cuda's LocalCUDACluster), each task holding one GPU resource.

    With a scheduler address it connects to workers started by `dask-cuda-worker` (or `dask worker --resources
    GPU=1`, one per GPU) instead.
    """

    def __init__(self, scheduler: str | None = None, resources: dict[str, float] | None = None) -> None:
        resources = dict(resources) if resources else {"GPU": 1}
        if scheduler:
            super().__init__(scheduler=scheduler, resources=resources)
            return
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as error:
            raise ValueError(
                f"--executor dask-cuda needs dask-cuda ({error}); pip install 'coarchive[gpu]' or dask-cuda"
            ) from None
        import dask
        from dask.distributed import Client

        self.resources = resources
        with dask.config.set({"distributed.worker.daemon": False}):
            self.cluster = LocalCUDACluster(threads_per_worker=1, dashboard_address=None, resources=resources)
        self.client = Client(self.cluster)


def check_worker_resources(client: Any, resources: dict[str, float]) -> None:
    """Raise ValueError when the cluster has workers and none declares `resources` (its tasks would wait forever)."""
    workers = client.scheduler_info().get("workers", {})
    if not workers:
        return  # an adaptive cluster may start its workers later
    fits = [w for w in workers.values() if all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items())]
    if not fits:
        wanted = " ".join(f"{k}={v:g}" for k, v in resources.items())
        raise ValueError(
            f"no worker of the Dask cluster declares resources {wanted}: start workers with "
            f"`dask worker SCHEDULER --resources {wanted}` (or dask-cuda-worker)"
        )


def parse_resources(text: str | None) -> dict[str, float] | None:
    """'GPU=1,MEM=2' -> {'GPU': 1.0, 'MEM': 2.0}; None or '' -> None; a malformed entry -> ValueError."""
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, amount = part.strip().partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not sep or not name.strip() or value <= 0:
            raise ValueError(f"resources must look like GPU=1 (a name, '=', a positive amount); got {part!r}")
        out[name.strip()] = value
    return out


EXECUTORS: Registry[Executor] = Registry("executor")
EXECUTORS.add("local", LocalExecutor)
EXECUTORS.add("dask", DaskExecutor)
EXECUTORS.add("dask-cuda", DaskCudaExecutor)


def make_executor(
    kind: str = "local", scheduler: str | None = None, workers: int = 2, resources: dict[str, float] | None = None
) -> Executor:
    """An executor by name: 'local', 'dask' (a LocalCluster, or `scheduler` such as tcp://host:8786), or
    'dask-cuda' (a LocalCUDACluster: one worker per GPU).

    A scheduler address always means Dask, whatever `kind` says. `resources` (e.g. {"GPU": 1}) is held by every
    task on Dask; the LocalCluster's workers declare it.
    """
    factory = EXECUTORS.get(kind)
    if factory is DaskCudaExecutor:
        return DaskCudaExecutor(scheduler=scheduler, resources=resources)
    if scheduler or factory is DaskExecutor:
        return DaskExecutor(scheduler=scheduler, workers=workers, resources=resources)
    if resources:
        raise ValueError("resources need a Dask executor (--executor dask or dask-cuda)")
    return factory()
