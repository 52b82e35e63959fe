"""Ingest downloads from a local HTTP server with img2dataset; broken URLs are counted, reruns resume."""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.pool.ingest import ingest


@pytest.fixture()
def server(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    for i in range(6):
        buffer = io.BytesIO()
        Image.new("RGB", (64 + i, 48), (40 * i, 100, 200)).save(buffer, format="JPEG")
        (site / f"good{i}.jpg").write_bytes(buffer.getvalue())
    (site / "text.jpg").write_text("not an image at all")
    (site / "cut.jpg").write_bytes((site / "good0.jpg").read_bytes()[:100])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_ingest_counts_failures_and_resumes(server: str, tmp_path: Path) -> None:
    names = [f"good{i}.jpg" for i in range(6)] + ["missing.jpg", "text.jpg", "cut.jpg"]
    rows = [{"url": f"{server}/{n}", "caption": f"picture {n}"} for n in names]
    urls = tmp_path / "urls.parquet"
    pq.write_table(pa.Table.from_pylist(rows), urls)
    pool = tmp_path / "pool"
    stats = ingest(str(urls), str(pool), shard_size=5, threads=4, timeout=5)
    assert stats["count"] == 9 and stats["successes"] == 6 and stats["shards"] == 2
    assert stats["failed_to_download"] + stats["failed_to_resize"] == 3
    assert sorted(p.name for p in pool.glob("0000*.tar")) == ["00000.tar", "00001.tar"]
    first = json.loads((pool / "00000_stats.json").read_text())
    before = (pool / "00000.tar").stat().st_mtime_ns
    again = ingest(str(urls), str(pool), shard_size=5, threads=4, timeout=5)
    assert again == stats and (pool / "00000.tar").stat().st_mtime_ns == before
    assert json.loads((pool / "00000_stats.json").read_text()) == first


def test_bad_ingest_input_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ingest(str(tmp_path / "none.parquet"), str(tmp_path / "pool"))
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/x.jpg\n")
    with pytest.raises(ValueError, match="input format"):
        ingest(str(tmp_path / "u.txt"), str(tmp_path / "pool"), input_format="xls")
