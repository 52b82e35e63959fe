"""Every stage on an s3:// data root, against a local S3 server (moto in server mode on 127.0.0.1, as s3fs tests
itself): the commands as a user types them, outputs checked in the bucket, the nightly run and one served request
included; an unreachable endpoint and a missing bucket are one-line errors naming the URL."""

from __future__ import annotations

import functools
import http.server
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from pipeline.app.cli import main
from pipeline.toy.world import WorldSpec

BUCKET = "coarchive-e2e"
ROOT = f"s3://{BUCKET}/root"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator:
    """A moto S3 server on a free loopback port, the AWS settings pointing at it, and an s3fs filesystem on it."""
    from moto.server import ThreadedMotoServer
    from s3fs import S3FileSystem

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COARCHIVE_CACHE", str(tmp_path / "cache"))  # the local copies of this test's roots
    request = urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).close()  # moto keeps its buckets per process: start empty
    S3FileSystem.clear_instance_cache()
    fs = S3FileSystem()
    fs.mkdir(BUCKET)
    yield fs
    S3FileSystem.clear_instance_cache()
    server.stop()


def coarchive(*words: str) -> str:
    """Run `coarchive WORDS` in process; its stdout. The command must succeed."""
    out = io.StringIO()
    real = sys.stdout
    sys.stdout = out
    try:
        code = main(["--quiet", *words])
    finally:
        sys.stdout = real
    assert code == 0, f"coarchive {' '.join(words)} exited {code}: {out.getvalue()}"
    return out.getvalue()


@pytest.fixture()
def url_site(tmp_path: Path) -> Iterator[str]:
    """A URL list on a local HTTP server (4 images, one missing) for ingest."""
    site = tmp_path / "site"
    site.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 30), (50 * i, 90, 160)).save(site / f"img{i}.jpg")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    rows = [{"url": f"{base}/img{i}.jpg", "caption": f"picture {i}"} for i in (0, 1, 2, 3, 9)]
    pq.write_table(pa.Table.from_pylist(rows), site / "urls.parquet")
    yield str(site / "urls.parquet")
    httpd.shutdown()


def _keys(fs, prefix: str) -> set[str]:
    fs.invalidate_cache()
    return {p.removeprefix(f"{BUCKET}/root/") for p in fs.find(f"{BUCKET}/root/{prefix}")}


def test_every_stage_on_an_s3_root(s3, url_site: str, tmp_path: Path) -> None:
    fs = s3
    out = coarchive("toy", "generate", "--out", ROOT, "--pool-size", "180", "--shard-size", "60", "--bench-size", "8",
                    "--workers", "1")  # fmt: skip
    assert out.strip().endswith(f"under {ROOT}")  # paths are shown as the URL, not as the local copy
    assert {"pool/00000.tar", "pool/00002_stats.json", "benchmark/classes.txt"} <= _keys(fs, "")
    late = sorted(fs.glob(f"{BUCKET}/root/pool/00002*"), key=lambda p: p.endswith("_stats.json"))
    for path in late:  # a shard that arrives later
        fs.mv(path, f"{BUCKET}/late/{path.rsplit('/', 1)[1]}")

    out = coarchive("ingest", "--urls", url_site, "--pool", f"s3://{BUCKET}/ingested", "--shard-size", "10")
    assert "3 of 5 images" not in out and "4 of 5 images" in out
    assert {"00000.tar", "00000.parquet", "00000_stats.json"} <= {
        p.rsplit("/", 1)[1] for p in fs.find(f"{BUCKET}/ingested")
    }

    coarchive("embed", "--pool", f"{ROOT}/pool", "--root", ROOT, "--model", "toy")  # embed streams URLs itself
    assert {"embeddings/toy/00000.npy", "embeddings/toy/00001.parquet"} <= _keys(fs, "embeddings")

    out = coarchive("index", "--root", ROOT, "--max-memory", "64M")
    assert "indexed 120 vectors" in out and "index/toy/v1/index.json" in _keys(fs, "index")

    hits = json.loads(coarchive("query", "heart", "circle", "--root", ROOT, "-k", "5", "--json"))
    assert [len(v) for v in hits.values()] == [5, 5]

    spec = WorldSpec()
    for name in spec.stuff:
        coarchive("concepts", "add", name, "--context", "--root", ROOT)
    for name in spec.things:
        coarchive("concepts", "add", name, "--root", ROOT)
    listed = coarchive("concepts", "list", "--root", ROOT, "--json")
    assert [c["name"] for c in json.loads(listed)] == [*spec.stuff, *spec.things]
    assert spec.things[-1] in fs.cat(f"{BUCKET}/root/concepts.yaml").decode()

    coarchive("archive", "--root", ROOT, "--run", "r1", "-k", "6")
    archives = _keys(fs, "archives/toy/r1")
    assert "archives/toy/r1/archives.json" in archives and f"archives/toy/r1/{spec.things[0]}/images.tar" in archives
    assert "r1" in coarchive("archive", "diff", "r1", "r1", "--root", ROOT, "--json")

    coarchive("cosegment", "--root", ROOT, "--run", "r1", "--k", "4")
    assert {"banks/toy/r1/bank.json", "banks/toy/r1/bank.safetensors"} <= _keys(fs, "banks")
    assert f"bank {ROOT}/banks/toy/r1" in coarchive("bank", "show", f"{ROOT}/banks/toy/r1")

    out = coarchive(
        "eval", "--dataset", "toy", "--data-root", f"{ROOT}/benchmark", "--bank", f"{ROOT}/banks/toy/r1",
        "--model", "toy", "--limit", "4", "--batch-size", "4", "--out", f"{ROOT}/eval/r1",
    )  # fmt: skip
    assert "mIoU" in out and f"{ROOT}/eval/r1" in out
    assert json.loads(fs.cat(f"{BUCKET}/root/eval/r1/" + _name(fs, "eval/r1", ".json")))

    for path in late:  # the late shard arrives, its _stats.json last as img2dataset writes it
        fs.mv(f"{BUCKET}/late/{path.rsplit('/', 1)[1]}", path)
    config = {
        "root": ".",  # the config's folder in the bucket
        "model": "toy",
        "device": "cpu",
        "embed": {"batch_size": 64},
        "archives": {"k": 6},
        "banks": {"k": 4},
        "evaluate": {"dataset": "toy", "data_root": "benchmark", "limit": 4, "batch_size": 4},
    }
    fs.pipe(f"{BUCKET}/root/nightly.yaml", yaml.safe_dump(config).encode())
    out = coarchive("run", "--config", f"{ROOT}/nightly.yaml", "--run", "r2")
    assert "run r2: finished" in out and f"{ROOT}/runs/r2/manifest.json" in out
    manifest = json.loads(fs.cat(f"{BUCKET}/root/runs/r2/manifest.json"))
    assert manifest["status"] == "done", manifest
    assert "embeddings/toy/00002.parquet" in _keys(fs, "embeddings")  # the late shard, embedded by the nightly run
    assert json.loads(fs.cat(f"{BUCKET}/root/index/toy/v1/index.json"))["count"] == 180
    assert {"banks/toy/r2/bank.json", "runs/latest.json"} <= _keys(fs, "")
    assert "already finished" in coarchive("run", "--config", f"{ROOT}/nightly.yaml", "--run", "r2")

    _serve_one_request(fs, tmp_path)


def _name(fs, prefix: str, suffix: str) -> str:
    return next(p for p in _keys(fs, prefix) if p.endswith(suffix)).rsplit("/", 1)[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _serve_one_request(fs, tmp_path: Path) -> None:
    """`coarchive serve` on the s3 root in its own process: a query answers from the bucket's index, and a run put
    into the bucket afterwards shows once the local copy refreshes (--refresh 1)."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    command = [sys.executable, "-m", "pipeline.app.cli", "serve", "--root", ROOT, "--port", str(port), "--refresh", "1"]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                _get(f"{base}/api/health")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        result = _get(f"{base}/api/query?text=heart&k=3&thumbnails=false")
        assert len(result["hits"]) == 3
        fs.pipe(f"{BUCKET}/root/runs/r9/manifest.json", json.dumps({"run": "r9", "stages": {}}).encode())
        for _ in range(100):
            if "r9" in {r["run"] for r in _get(f"{base}/api/runs")}:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the new run never showed: {(tmp_path / 'serve.log').read_text()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert f"coarchive serve: {ROOT} at {base}/" in (tmp_path / "serve.log").read_text()


def test_a_missing_bucket_is_one_line_naming_the_url(s3, capsys) -> None:
    assert main(["--quiet", "index", "--root", "s3://no-such-bucket/root"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "coarchive: error: cannot read s3://no-such-bucket/root: bucket 'no-such-bucket' not found"


def test_an_unreachable_endpoint_is_one_line_naming_the_url(s3, capsys, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    from s3fs import S3FileSystem

    S3FileSystem.clear_instance_cache()
    assert main(["--quiet", "query", "heart", "--root", ROOT]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"coarchive: error: cannot reach {ROOT}: ") and "\n" not in err, err
