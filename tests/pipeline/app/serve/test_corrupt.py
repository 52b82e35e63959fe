"""Corrupt files inside the data root (bank, checkpoint, archive, manifest) get one clear JSON error, not a bare 500."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def corrupt(serve_root: Path, reco_plus_checkpoint: Path):
    """A bank whose tensors are garbage, a checkpoint whose weights are garbage, a broken archive and manifest."""
    bank = serve_root / "banks" / "toy" / "corrupt"
    shutil.copytree(serve_root / "banks" / "toy" / "toy", bank)
    (bank / "bank.safetensors").write_bytes(b"\x00" * 8 + b"this is no safetensors file")
    checkpoint = serve_root / "checkpoints" / "corrupt"
    shutil.copytree(reco_plus_checkpoint, checkpoint)
    (checkpoint / "model.pt").write_bytes(b"PK\x03\x04 truncated zip")
    archive = serve_root / "archives" / "toy" / "toy" / "corrupt"
    shutil.copytree(serve_root / "archives" / "toy" / "toy" / "circle", archive)
    (archive / "items.parquet").write_bytes(b"PAR1 not really")
    run = serve_root / "runs" / "corrupt"
    run.mkdir()
    (run / "manifest.json").write_text("{")
    yield
    for folder in (bank, checkpoint.parent, archive, run):
        shutil.rmtree(folder)


def segment(client, serve_root: Path, **form):
    image = next((serve_root / "benchmark" / "images").iterdir()).read_bytes()
    return client.post("/api/segment", files={"file": ("a.jpg", image, "image/jpeg")}, data=form)


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"bank": "corrupt"}, "could not be loaded"),
        ({"segmenter": "reco-plus", "checkpoint": "checkpoints/corrupt"}, "could not be loaded"),
    ],
)
def test_a_corrupt_bank_or_checkpoint_is_a_clear_error(client, serve_root, corrupt, form, words):
    answer = segment(client, serve_root, **form)
    assert answer.status_code == 500, answer.text[:300]
    detail = answer.json()["detail"]
    assert words in detail and (form.get("bank") or form.get("checkpoint")) in detail
    assert str(serve_root) not in answer.text
    assert segment(client, serve_root, bank="toy").status_code == 200  # the service goes on


@pytest.mark.parametrize("path", ["/api/archives/toy/toy/corrupt", "/api/runs/corrupt"])
def test_a_corrupt_archive_or_manifest_is_a_clear_error(client, serve_root, corrupt, path):
    answer = client.get(path)
    assert answer.status_code == 500, answer.text[:300]
    assert "could not be read" in answer.json()["detail"] and str(serve_root) not in answer.text


def test_an_unexpected_error_is_one_json_line(serve_root, engine, monkeypatch):
    from fastapi.testclient import TestClient

    from pipeline.app.serve.app import create_app
    from pipeline.app.serve.config import ServeConfig
    from tests.pipeline.app.serve.conftest import BASE_URL

    app = create_app(ServeConfig(root=serve_root), engine)
    client = TestClient(app, base_url=BASE_URL, raise_server_exceptions=False)
    monkeypatch.setattr(engine, "index_info", lambda: 1 / 0)
    answer = client.get("/api/info")
    assert answer.status_code == 500 and answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"] == "internal error (ZeroDivisionError); the server log has the details"
