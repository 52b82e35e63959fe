"""Refuse cross-origin requests that change state: a page on another origin may not POST to the service."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

from pipeline.app.serve.uploads import send_error

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")  # the Host names a loopback-bound service answers to


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's Origin header ('http://127.0.0.1:8000', or 'null') names the Host it was sent to."""
    netloc = urlsplit(origin).netloc if origin != "null" else ""
    return bool(netloc) and netloc.lower() == host.lower()


class SameOriginWrites:
    """ASGI middleware: answer 403 to a non-GET request a browser marks as sent from another origin or site (Origin,
    Sec-Fetch-Site); requests without those headers (curl, scripts) pass, as CSRF needs a browser."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        """Check where a state-changing request comes from, then pass it on."""
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            origin, site = headers.get("origin"), headers.get("sec-fetch-site")
            if site in ("cross-site", "same-site") or (origin is not None and not same_origin(origin, headers["host"])):
                shown = origin or site
                await send_error(send, 403, f"cross-origin {scope['method']} refused (from {shown!r})")
                return
        await self.app(scope, receive, send)
