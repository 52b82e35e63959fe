"""DNS rebinding and cross-site requests: only the allowed Host names are answered, and only same-origin writes."""

from __future__ import annotations

import pytest

from tests.pipeline.app.serve.test_limits import raw_request, status


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "127.0.0.1", "LOCALHOST:1"])
def test_loopback_host_names_are_answered(client, host):
    assert client.get("/api/info", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "127.0.0.1.nip.io:8000", "10.0.0.1"])
@pytest.mark.parametrize("path", ["/api/info", "/", "/api/health", "/metrics", "/openapi.json"])
def test_other_host_names_are_refused(client, host, path):
    answer = client.get(path, headers={"host": host})
    assert answer.status_code == 400 and "host" in answer.text.lower(), answer.text[:200]


def test_a_rebound_name_is_refused_by_the_real_server(live_server):
    request = b"GET /api/health HTTP/1.1\r\nHost: rebound.attacker.example:%d\r\nConnection: close\r\n\r\n"
    port = int(live_server.rsplit(":", 1)[1])
    assert status(raw_request(live_server, request % port)) == 400
    assert status(raw_request(live_server, request.replace(b"rebound.attacker.example", b"127.0.0.1") % port)) == 200


def test_allowed_hosts_are_configurable(make_client):
    client = make_client(allowed_hosts=("serve.lab.example",))
    assert client.get("/api/info", headers={"host": "serve.lab.example:8000"}).status_code == 200
    assert client.get("/api/info", headers={"host": "localhost:8000"}).status_code == 400
    with pytest.raises(ValueError, match=r"bad allowed host 'a\.\*\.example'"):
        make_client(allowed_hosts=("a.*.example",))


def segment(client, serve_root, headers: dict):
    image = next((serve_root / "benchmark" / "images").iterdir()).read_bytes()
    files = {"file": ("a.jpg", image, "image/jpeg")}
    return client.post("/api/segment", files=files, data={"bank": "toy"}, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://attacker.example"},
        {"origin": "http://127.0.0.1:9999"},  # another port is another origin
        {"origin": "null"},  # a sandboxed frame or a file: page
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": "http://localhost:3000"},
    ],
)
def test_cross_origin_posts_are_refused(client, serve_root, headers):
    answer = segment(client, serve_root, headers)
    assert answer.status_code == 403, answer.text[:200]
    assert "cross-origin" in answer.json()["detail"]
    image_query = client.post("/api/query/image", files={"file": ("a.png", b"x", "image/png")}, headers=headers)
    assert image_query.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, scripts: no Origin
        {"origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"},  # the page itself
        {"sec-fetch-site": "none"},  # typed by the user
    ],
)
def test_same_origin_and_non_browser_posts_are_answered(client, serve_root, headers):
    assert segment(client, serve_root, {"host": "127.0.0.1:8000", **headers}).status_code == 200


def test_serve_command_allows_the_bound_host_and_the_names_given(monkeypatch, serve_root):
    import uvicorn

    from pipeline.app.cli import build_parser

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(config=app.state.config))
    for argv, hosts in [
        ([], ("127.0.0.1", "localhost", "[::1]")),
        (["--host", "::1"], ("127.0.0.1", "localhost", "[::1]")),
        (["--host", "192.168.1.5", "--token", "x" * 16], ("127.0.0.1", "localhost", "[::1]", "192.168.1.5")),
        (["--host", "0.0.0.0", "--token", "x" * 16], ("*",)),  # reached by any name; the token guards it
        (["--host", "0.0.0.0", "--token", "x" * 16, "--allowed-hosts", "lab.example,*.lab.example"], None),
    ]:
        args = build_parser().parse_args(["serve", "--root", str(serve_root), "--model", "toy", *argv])
        assert args.func(args) == 0
        assert served["config"].allowed_hosts == (hosts or ("lab.example", "*.lab.example")), argv
