"""Shared fixtures: a small toy world on disk and the bundled toy model, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pipeline.toy.world import WorldSpec

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread_per_worker():
    """Each xdist worker keeps one torch thread: a test that raises it would oversubscribe the 2 cores for the rest."""
    yield
    torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


# Minutes each on one core, longest first: started first, so that the 2 xdist workers do not end on them.
LONG_FIRST = (
    "tests/pipeline/toy/test_reco_plus_quality.py",
    "tests/pipeline/toy/test_zegclip_quality.py",
    "tests/pipeline/app/test_demo.py",
    "tests/pipeline/toy/test_quality.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(LONG_FIRST)))  # stable: the rest keep order
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Expanded weights go to a per-session cache, never to the user's home."""
    os.environ.setdefault("COARCHIVE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def small_spec() -> WorldSpec:
    return WorldSpec()


@pytest.fixture(scope="session")
def toy_world(tmp_path_factory: pytest.TempPathFactory, small_spec: WorldSpec) -> Path:
    """A 120-image pool in 3 shards and a 12-image benchmark."""
    from pipeline.toy.export import generate_toy_world

    out = tmp_path_factory.mktemp("toyworld")
    generate_toy_world(out, small_spec, seed=3, pool_size=120, shard_size=50, bench_size=12, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def toy_model():
    from pipeline.core.models import load_model

    return load_model("toy", device="cpu")
