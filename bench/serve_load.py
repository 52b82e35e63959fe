"""Benchmark: load test of `coarchive serve` on loopback: p50/p99 latency and requests/s per endpoint.

usage: .venv/bin/python -m bench.serve_load [--root DATA_ROOT] [--requests 500] [--concurrency 8] [--seconds 60]
       .venv/bin/python -m bench.serve_load --pool-size 40 --bank-k 2 --requests 4 --concurrency 2 --warmup 1  # smoke
The server runs as a subprocess (`coarchive serve`) on a free loopback port, over DATA_ROOT or, without --root,
over a toy data root the script builds first (400 pool images, archives, a ReCo bank). Each endpoint gets at most
--requests requests from --concurrency client threads (one keep-alive httpx client each, no proxy from the
environment) for at most --seconds, after a short warm-up. Endpoints: text queries (k=10 with thumbnails, concept
names in turn) and ReCo segmentation of a 96-px toy image (JSON with mask and overlay).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

WORDS = ("circle", "square", "triangle", "star", "heart", "cross", "ring", "crescent", "grass", "water", "sand", "sky")


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, port: int, log: Path, model: str | None = None) -> subprocess.Popen:
    """`coarchive serve` over `root` on 127.0.0.1:`port`, its output to `log`; returns once /api/health answers.

    `model` is passed as --model; None leaves the choice to the server (COARCHIVE_MODEL, or the root's only model).
    """
    command = [sys.executable, "-m", "pipeline.app.cli", "--quiet", "serve", "--root", str(root), "--port", str(port)]
    command += ["--host", "127.0.0.1", *(["--model", model] if model else [])]
    process = subprocess.Popen([*command, "--log-level", "warning"], stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1, trust_env=False).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("server did not start within 120 s")


def load(send, requests: int, concurrency: int, seconds: float, base: str) -> dict:
    """Run `send(client, i)` at most `requests` times from `concurrency` threads for at most `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    issued = iter(range(requests))
    deadline = time.monotonic() + seconds

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
            while time.monotonic() < deadline:
                with lock:
                    i = next(issued, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    answer = send(client, i)
                    ok = answer.status_code == 200
                    reason = f"HTTP {answer.status_code}"
                except httpx.HTTPError as error:
                    ok, reason = False, type(error).__name__
                elapsed = time.perf_counter() - start
                with lock:
                    (latencies.append(elapsed) if ok else errors.append(reason))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
        "rps": len(latencies) / wall,
        "seconds": wall,
        "first_error": errors[0] if errors else "",
    }


def bench_image(root: Path) -> bytes:
    """A benchmark image of the data root, or a 96-px noise PNG when it has none."""
    images = sorted((root / "benchmark" / "images").glob("*.jpg")) if (root / "benchmark").is_dir() else []
    if images:
        return images[0].read_bytes()
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((96, 96), 50).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Build or take a data root, start the server, load each endpoint, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="data root to serve (default: build a toy one)")
    parser.add_argument("--pool-size", type=int, default=400, help="pool images of the toy root")
    parser.add_argument("--bank-k", type=int, default=8, help="archive images per concept in the toy root's bank")
    parser.add_argument("--model", default=None, help="--model for the server (default: toy for the toy root)")
    parser.add_argument("--work", default=None, help="folder for the toy root, the cache and the server log")
    parser.add_argument("--requests", type=int, default=500, help="requests per endpoint (upper bound)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--seconds", type=float, default=60, help="time limit per endpoint")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted requests per endpoint first")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.seconds <= 0 or args.pool_size < 1 or args.bank_k < 1:
        parser.error("--requests, --concurrency, --seconds, --pool-size and --bank-k must be positive")

    work = Path(args.work or tempfile.mkdtemp(prefix="serve_load_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("COARCHIVE_CACHE", str(work / "cache"))
    if args.root:
        root = Path(args.root)
    else:
        from pipeline.toy.serve_root import build_toy_root

        start = time.perf_counter()
        root = build_toy_root(work / "root", pool_size=args.pool_size, bank_k=args.bank_k)
        print(f"built a toy data root of {args.pool_size} images in {time.perf_counter() - start:.0f} s: {root}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(root, port, work / "server.log", args.model or (None if args.root else "toy"))
    try:
        banks = httpx.get(f"{base}/api/banks", trust_env=False).json()
        model_id = httpx.get(f"{base}/api/info", trust_env=False).json()["model_id"]
        bank = next(b["run"] for b in banks if b["model_id"] == model_id)
        image = bench_image(root)
        endpoints = {
            "GET /api/query (text, k=10, thumbnails)": lambda c, i: c.get(
                "/api/query", params={"text": WORDS[i % len(WORDS)], "k": 10}
            ),
            "POST /api/segment (reco, 96 px, JSON)": lambda c, i: c.post(
                "/api/segment", files={"file": ("a.jpg", image, "image/jpeg")}, data={"bank": bank}
            ),
        }
        rows = []
        for name, send in endpoints.items():
            load(send, args.warmup, 1, args.seconds, base)
            rows.append((name, load(send, args.requests, args.concurrency, args.seconds, base)))
        metrics = httpx.get(f"{base}/metrics", trust_env=False).text
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(
        f"\nloopback load test: {args.concurrency} client threads, at most {args.requests} requests and "
        f"{args.seconds:g} s per endpoint, {os.cpu_count()} CPU cores shared by server and clients\n"
    )
    print(f"| {'endpoint':<40} | requests | errors | p50 ms | p99 ms |  req/s |")
    print(f"|{'-' * 42}|---------:|-------:|-------:|-------:|-------:|")
    for name, r in rows:
        print(
            f"| {name:<40} | {r['requests']:>8} | {r['errors']:>6} | {r['p50_ms']:>6.1f} | {r['p99_ms']:>6.1f} "
            f"| {r['rps']:>6.1f} |"
        )
    for name, r in rows:
        if r["errors"]:
            print(f"{name}: {r['errors']} errors, the first: {r['first_error']}")
    print("\nserver-side means from /metrics (warm-up included):")
    for line in metrics.splitlines():
        if line.startswith(("coarchive_query_seconds_sum", "coarchive_segment_seconds_sum")):
            count_line = line.replace("_sum", "_count")
            series, total = line.rsplit(" ", 1)
            count = next(
                float(x.rsplit(" ", 1)[1]) for x in metrics.splitlines() if x.startswith(count_line.split(" ")[0])
            )
            print(f"  {series}: {1000 * float(total) / max(count, 1):.1f} ms mean over {count:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
