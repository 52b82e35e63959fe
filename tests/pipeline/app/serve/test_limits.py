"""Limits that hold in the real server (header size and count, on a live uvicorn) and the metrics of refusals."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest


def raw_request(base: str, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes to the live server and read its answer until it closes (bounded by `timeout`)."""
    address = urlsplit(base)
    answer = b""
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server stopped reading: what it answered is still there to read
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


def status(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def get(headers: list[bytes]) -> bytes:
    """A GET /api/health request with extra header lines, closing the connection after the answer."""
    lines = [b"GET /api/health HTTP/1.1", b"Host: 127.0.0.1", *headers, b"Connection: close", b"", b""]
    return b"\r\n".join(lines)


def test_ordinary_headers_are_answered(live_server):
    answer = raw_request(live_server, get([b"X-Small-%d: yes" % i for i in range(40)]))
    assert status(answer) == 200, answer[:200]


@pytest.mark.parametrize(
    "headers",
    [
        [b"X-Big: " + b"a" * (8 * 1024 * 1024)],  # 8 MiB in one header
        [b"X-Many-%d: v" % i for i in range(5_000)],  # 5,000 headers (about 60 KB)
        [b"X-Few-%d: v" % i for i in range(150)],  # 150 small headers (about 2 KB): over the count only
    ],
    ids=["8MiB", "5000-headers", "150-headers"],
)
def test_oversized_or_too_many_headers_are_refused(live_server, headers):
    answer = raw_request(live_server, get(headers))
    assert status(answer) in (400, 431), answer[:200]
    assert b'"status":"ok"' not in answer


def test_refusals_by_length_are_counted_in_metrics(make_client):
    client = make_client(max_upload_bytes=2_000)
    answer = client.post(
        "/api/segment", content=b"x" * 200_000, headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert answer.status_code == 413
    text = client.get("/metrics").text
    assert 'coarchive_http_requests_total{method="POST",route="/api/segment",status="413"} 1.0' in text


def test_failed_segmentations_are_not_timed_as_successes(client, serve_root):
    files = {"file": ("a.png", b"not an image at all", "image/png")}
    assert client.post("/api/segment", files=files, data={"bank": "toy"}).status_code == 415
    assert client.get("/api/query", params={"text": "star", "k": 2}).status_code == 200
    image = next((serve_root / "benchmark" / "images").iterdir()).read_bytes()
    query = client.post("/api/query/image", files={"file": ("a.png", b"nope", "image/png")})
    assert query.status_code == 415
    ok = client.post("/api/segment", files={"file": ("a.jpg", image, "image/jpeg")}, data={"bank": "toy"})
    assert ok.status_code == 200
    text = client.get("/metrics").text
    assert 'coarchive_segment_seconds_count{segmenter="reco"} 1.0' in text  # the success only
    assert 'coarchive_segment_failures_total{segmenter="reco",status="415"} 1.0' in text
    assert 'coarchive_query_seconds_count{kind="image"}' not in text
    assert 'coarchive_query_failures_total{kind="image",status="415"} 1.0' in text
