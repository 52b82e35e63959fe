"""Safe by default: loopback bind, bearer token, upload limits, safe decoding, root confinement, clear 4xx errors."""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT"


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height RGB pixels (its one IDAT holds almost nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def jpeg(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((size, size), 60).convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def segment(client, data: bytes, **form):
    return client.post("/api/segment", files={"file": ("x.png", data, "image/png")}, data={"bank": "toy", **form})


def test_serve_binds_loopback_by_default(monkeypatch, serve_root):
    import uvicorn

    from pipeline.app.cli import build_parser

    bound = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: bound.update(host=host, port=port))
    args = build_parser().parse_args(["serve", "--root", str(serve_root)])
    assert args.func(args) == 0
    assert bound == {"host": "127.0.0.1", "port": 8000}


def test_bearer_token_required_when_configured(make_client):
    client = make_client(token="s3cret-token")
    refused = client.get("/api/info")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in refused.json()["detail"]
    assert client.get("/api/info", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert client.get("/metrics").status_code == 401
    assert client.get("/api/info", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert client.get("/api/health").status_code == 200 and client.get("/").status_code == 200  # no data in either


def test_upload_too_large_is_413(make_client):
    client = make_client(max_upload_bytes=2_000)
    big = jpeg(96)
    assert len(big) > 2_000
    answer = segment(client, big)  # within the body limit (multipart overhead), over the file limit
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]
    huge = segment(client, b"\xff" * 200_000)  # refused by Content-Length before the body is read
    assert huge.status_code == 413 and "limit" in huge.json()["detail"]
    head = b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    streamed = client.post(  # no Content-Length: counted while streaming
        "/api/query/image",
        content=iter([head, *(b"x" * 10_000 for _ in range(20))]),
        headers={"content-type": "multipart/form-data; boundary=abc"},
    )
    assert streamed.status_code == 413


def test_non_image_is_415(client):
    for data in (b"hello, this is text", b"%PDF-1.4 not an image", b"GIF89a\x00broken" * 2):
        answer = segment(client, data)
        assert answer.status_code in (400, 415), answer.text
    assert segment(client, b"just text").status_code == 415
    assert "not an image" in segment(client, b"just text").json()["detail"]


def test_decompression_bomb_is_refused_before_decoding(client):
    for width, height in ((5_000, 5_000), (100_000, 100_000)):  # over the service limit; over PIL's own limit
        answer = segment(client, png_declaring(width, height))
        assert answer.status_code == 413, answer.text
        assert "pixels" in answer.json()["detail"] or "bomb" in answer.json()["detail"]
    query = client.post("/api/query/image", files={"file": ("b.png", png_declaring(50_000, 50_000), "image/png")})
    assert query.status_code == 413


@pytest.fixture
def escapes(serve_root: Path, tmp_path: Path):
    """Symlinks from inside the root to an archive run, a bank and a manifest copied outside it; removed after."""
    outside = tmp_path / "outside"
    shutil.copytree(serve_root / "archives" / "toy" / "toy", outside / "run")
    shutil.copytree(serve_root / "banks" / "toy" / "toy", outside / "bank")
    (outside / "manifest").mkdir()
    (outside / "manifest" / "manifest.json").write_text(f'{{"run": "{SECRET}", "stages": {{}}}}')
    (outside / "run" / "circle" / "query.json").write_text(f'{{"concept": "{SECRET}"}}')
    links = [
        (serve_root / "archives" / "toy" / "escape", outside / "run"),
        (serve_root / "archives" / "toy" / "toy" / "escape", outside / "run" / "circle"),
        (serve_root / "banks" / "toy" / "escape", outside / "bank"),
        (serve_root / "runs" / "escape", outside / "manifest"),
    ]
    for link, target in links:
        link.symlink_to(target, target_is_directory=True)
    yield
    for link, _ in links:
        link.unlink()


@pytest.mark.parametrize(
    "path",
    [
        "/api/archives/toy/escape/circle",  # symlinked run folder
        "/api/archives/toy/toy/escape",  # symlinked concept folder
        "/api/runs/escape",  # symlinked run with a manifest
        "/api/archives/toy/toy/..%2F..%2F..%2Fruns",
        "/api/archives/toy/%2e%2e/circle",
        "/api/archives/%2E%2E/toy/circle",
        "/api/archives/toy/toy/%2Fetc%2Fpasswd",
        "/api/archives/toy/toy/.hidden",
        "/api/runs/..%2F..%2Fetc",
        "/api/runs/%2e%2e",
        "/api/runs/..",
        "/api/archives/toy/toy/../../../etc/passwd",
    ],
)
def test_paths_outside_the_root_are_refused(client, escapes, path):
    answer = client.get(path)
    assert 400 <= answer.status_code < 500, (path, answer.status_code)
    assert SECRET not in answer.text and "passwd" not in answer.text.replace(path, "")


@pytest.mark.parametrize(
    "form",
    [
        {"bank": "escape"},  # symlinked bank folder
        {"bank": "../toy"},
        {"bank": "/etc"},
        {"bank": "%2e%2e"},
        {"segmenter": "reco-plus", "checkpoint": "../../outside"},
        {"segmenter": "reco-plus", "checkpoint": "/tmp"},
        {"segmenter": "reco-plus", "checkpoint": "pool/../../x"},
    ],
)
def test_form_fields_naming_folders_are_confined(client, escapes, serve_root, form):
    data = (serve_root / "benchmark" / "images").iterdir().__next__().read_bytes()
    files = {"file": ("a.jpg", data, "image/jpeg")}
    answer = client.post("/api/segment", files=files, data={"segmenter": "reco", **form})
    assert answer.status_code == 400, answer.text
    assert "data root" in answer.json()["detail"] or "bad" in answer.json()["detail"]


def test_listings_leave_out_symlinks_leading_outside(client, escapes):
    assert SECRET not in client.get("/api/archives").text + client.get("/api/concepts").text
    assert "escape" not in client.get("/api/banks").text + client.get("/api/runs").text


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "words"),
    [
        ("get", "/api/query", {"k": "3"}, 422, "text: Field required"),
        ("get", "/api/query", {"text": "star", "k": "0"}, 422, "k: Input should be greater than or equal to 1"),
        ("get", "/api/query", {"text": "star", "k": "many"}, 422, "k: Input should be a valid integer"),
        ("get", "/api/query", {"text": "star", "k": "100000"}, 422, "k must be at most 200"),
        ("get", "/api/archives/toy/toy/circle", {"limit": "-1"}, 422, "limit: Input should be greater"),
        ("get", "/api/archives/toy/toy/unicorn", {}, 404, "no archive 'unicorn'"),
        ("post", "/api/segment", {"bank": "toy"}, 422, "file: Field required"),
        ("post", "/api/segment", {"bank": "toy", "format": "gif", "file": True}, 422, "format: Input should be"),
        ("post", "/api/segment", {"segmenter": "nope", "file": True}, 422, "unknown segmenter 'nope'"),
        ("post", "/api/segment", {"file": True}, 400, "needs bank"),
        ("post", "/api/segment", {"bank": "toy", "concepts": "unicorn", "file": True}, 400, "unknown concept"),
        ("post", "/api/segment", {"bank": "nobank", "file": True}, 404, "no segment bank 'nobank'"),
    ],
)
def test_malformed_requests_get_a_clear_4xx(client, serve_root, method, path, payload, status, words):
    if method == "get":
        answer = client.get(path, params=payload)
    else:
        data = {k: v for k, v in payload.items() if k != "file"}
        image = next((serve_root / "benchmark" / "images").iterdir()).read_bytes()
        files = {"file": ("a.jpg", image, "image/jpeg")} if payload.get("file") else None
        answer = client.post(path, data=data, files=files) if files else client.post(path, data=data)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert str(serve_root) not in answer.text  # the server's own paths are not shown
