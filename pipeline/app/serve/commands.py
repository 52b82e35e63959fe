"""`coarchive serve`: the query service and web page over a data root."""

from __future__ import annotations

import argparse
import os

from pipeline.app.serve.origin import LOOPBACK_HOSTS
from pipeline.app.serve.uploads import MAX_PIXELS, MAX_UPLOAD_BYTES

TOKEN_ENV = "COARCHIVE_TOKEN"


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the JSON API, OpenAPI docs (/docs), Prometheus metrics (/metrics) and the web page over a data root."""
    from pipeline.app.serve.config import ServeConfig
    from pipeline.core.model_choice import model_of_index

    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None and not args.no_token_ok:
        raise ValueError(
            f"binding {args.host} exposes the data root beyond this machine; set --token (or {TOKEN_ENV}), "
            "or pass --no-token-ok to serve it without one"
        )
    if not 0 <= args.port <= 65535:
        raise ValueError(f"bad port {args.port}")
    config = ServeConfig.build(
        allowed_hosts=allowed_hosts(args.host, args.allowed_hosts),
        root=args.root,
        model=args.model or "",
        version=args.version,
        pool=args.pool,
        token=token,
        device=args.device,
        max_upload_bytes=args.max_upload_bytes,
        max_pixels=args.max_pixels,
    ).checked()
    config = config.model_copy(update={"model": model_of_index(args.model, config.root, config.version, "serve")})

    import uvicorn

    from pipeline.app.serve.app import create_app
    from pipeline.app.serve.server import server_options

    app = create_app(config)
    refreshing = _refresh_copies(args)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"coarchive serve: {config.root} at http://{shown}:{args.port}/ (API docs /docs, metrics /metrics)")
    options = server_options()
    try:
        uvicorn.run(
            app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log, **options
        )
    finally:
        for stop in refreshing:
            stop.set()
    return 0


def _refresh_copies(args: argparse.Namespace) -> list:
    """For a URL root (or pool), pull what changed in the bucket every --refresh seconds into the local copy the
    service reads (pipeline/app/url_roots.py made it and pulled it once); return the threads' stop events."""
    from pipeline.core.logs import get_logger

    log = get_logger(__name__)
    copies = getattr(args, "remote_roots", None) or {}
    if args.refresh < 0:
        raise ValueError(f"--refresh must be 0 or more seconds, got {args.refresh}")
    if not copies or args.refresh == 0:
        return []

    def report(done) -> None:
        if done.files or done.removed:
            log.info(f"refreshed the local copy: {done.describe()}")

    stops = []
    for copy, patterns, excluded in copies.values():
        log.info(f"{copy.url}: served from {copy.local}, refreshed every {args.refresh:g} s")
        stops.append(copy.refresh_every(args.refresh, patterns, excluded, on_pull=report))
    return stops


def allowed_hosts(host: str, given: str | None) -> tuple[str, ...]:
    """The Host names to answer: those `given` (comma-separated), else the loopback names and the bound address;
    any name for a wildcard bind (0.0.0.0, ::), which needs a token or --no-token-ok."""
    if given:
        return tuple(name.strip() for name in given.split(",") if name.strip())
    if host in ("0.0.0.0", "::", ""):
        return ("*",)
    name = f"[{host}]" if ":" in host else host
    return LOOPBACK_HOSTS if name in LOOPBACK_HOSTS else (*LOOPBACK_HOSTS, name)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `coarchive serve` on the `coarchive` parser."""
    serve = commands.add_parser(
        "serve",
        help="serve the query API and web page over a data root",
        description=cmd_serve.__doc__ + " Binds 127.0.0.1 unless --host says otherwise.",
    )
    serve.add_argument("--root", required=True, help="data root (index/, archives/, banks/, runs/, pool/)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--allowed-hosts",
        default=None,
        help="comma-separated Host names to answer, e.g. 'lab.example,*.lab.example' (default: the loopback names "
        "and --host; any for 0.0.0.0); other names get 400, against DNS rebinding",
    )
    serve.add_argument(
        "--token", default=None, help=f"require 'Authorization: Bearer TOKEN' on the API (or set {TOKEN_ENV})"
    )
    serve.add_argument(
        "--no-token-ok", action="store_true", help="allow a non-loopback --host without a token (not advised)"
    )
    serve.add_argument(
        "--model", default=None, help="the index's model (default: $COARCHIVE_MODEL, else the only one in ROOT/index/)"
    )
    serve.add_argument("--version", default="v1", help="index version folder")
    serve.add_argument("--pool", default=None, help="pool folder for thumbnails (default: ROOT/pool)")
    serve.add_argument("--device", default="cpu", help="torch device for queries and segmentation")
    serve.add_argument(
        "--max-upload-bytes", type=int, default=MAX_UPLOAD_BYTES, help="largest accepted upload in bytes"
    )
    serve.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="largest accepted image in pixels (W x H)")
    serve.add_argument(
        "--refresh",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="with a URL root (s3://...): seconds between pulls of what changed in the bucket into the local copy "
        "the service reads (default 300; 0: only at start)",
    )
    serve.add_argument("--log-level", default="info", help="uvicorn log level")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)
