"""Serve fixtures: one small toy data root and one loaded engine per test worker, apps and a live server over them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BASE_URL = "http://127.0.0.1:8000"  # TestClient's default Host 'testserver' is not one the service answers to


@pytest.fixture(scope="session")
def serve_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-image toy data root: pool, embeddings, index, archives of every class, a bank and a run manifest."""
    from pipeline.toy.serve_root import build_toy_root

    return build_toy_root(tmp_path_factory.mktemp("serve_root"), pool_size=300)


@pytest.fixture(scope="session")
def engine(serve_root: Path):
    """The toy CLIP and its segmenter cache, loaded once and shared by every app of the worker."""
    from pipeline.app.serve.config import ServeConfig
    from pipeline.app.serve.engine import Engine

    return Engine(ServeConfig(root=serve_root).checked())


@pytest.fixture
def make_client(serve_root: Path, engine):
    """Build a TestClient over the shared root and engine with some config fields changed."""
    from fastapi.testclient import TestClient

    from pipeline.app.serve.app import create_app
    from pipeline.app.serve.config import ServeConfig

    def make(**changes) -> TestClient:
        return TestClient(create_app(ServeConfig(root=serve_root, **changes), engine), base_url=BASE_URL)

    return make


@pytest.fixture
def client(make_client):
    """A TestClient with the default config (no token)."""
    return make_client()


def free_socket() -> socket.socket:
    """A loopback socket bound to a free port, ready to hand to uvicorn (no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session")
def live_server(serve_root: Path, engine) -> Iterator[str]:
    """A real uvicorn server in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    from pipeline.app.serve.app import create_app
    from pipeline.app.serve.config import ServeConfig
    from pipeline.app.serve.server import server_options

    app = create_app(ServeConfig(root=serve_root, token="browser-test-token"), engine)
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, **server_options()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="session")
def reco_plus_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained ReCo+ checkpoint folder (LR-ASPP, three toy classes) outside every data root."""
    from segment.reco_plus import TrainConfig, build_model, save_checkpoint

    folder = tmp_path_factory.mktemp("reco_plus_outside") / "ckpt"
    config = TrainConfig(arch="lraspp_mobilenet_v3_large")
    save_checkpoint(folder, build_model(config.arch, 3), config, ["grass", "sky", "star"], {"step": 0})
    return folder
