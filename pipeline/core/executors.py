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
    """Runs tasks on dask.distributed workers: a LocalCluster by default, or an existing scheduler's cluster."""

    def __init__(self, scheduler: str | None = None, workers: int = 2, threads_per_worker: int = 1) -> None:
        from dask.distributed import Client, LocalCluster

        if scheduler:
            self.cluster = None
            self.client = Client(scheduler)
        else:
            self.cluster = LocalCluster(
                n_workers=workers, threads_per_worker=threads_per_worker, processes=True, dashboard_address=None
            )
            self.client = Client(self.cluster)

    def map_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[tuple[Any, Any]]:
        """Submit every item, then yield (item, result or exception) as tasks finish."""
        from dask.distributed import as_completed

        futures = {self.client.submit(fn, item, pure=False): item for item in items}
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


EXECUTORS: Registry[Executor] = Registry("executor")
EXECUTORS.add("local", LocalExecutor)
EXECUTORS.add("dask", DaskExecutor)


def make_executor(kind: str = "local", scheduler: str | None = None, workers: int = 2) -> Executor:
    """An executor by name: 'local', or 'dask' (a LocalCluster, or `scheduler` such as tcp://host:8786).

    A scheduler address always means Dask, whatever `kind` says.
    """
    factory = EXECUTORS.get(kind)
    if scheduler or factory is DaskExecutor:
        return DaskExecutor(scheduler=scheduler, workers=workers)
    return factory()
