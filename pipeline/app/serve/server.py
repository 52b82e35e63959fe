"""How the service is run: uvicorn's settings (h11 with a bounded header block) and a header-count limit."""

from __future__ import annotations

from pipeline.app.serve.uploads import send_error

MAX_HEADER_BYTES = 32 * 1024  # request line and headers together, as nginx's default large_client_header_buffers
MAX_HEADERS = 100  # header lines per request, as Apache's LimitRequestFields


def server_options() -> dict:
    """uvicorn settings of `coarchive serve`: the h11 parser, which stops reading a header block at MAX_HEADER_BYTES
    (httptools has no such limit and would take megabytes of headers)."""
    return {"http": "h11", "h11_max_incomplete_event_size": MAX_HEADER_BYTES}


class HeaderLimit:
    """ASGI middleware: refuse requests with more than `count` headers or `size` bytes of them with 431, whatever
    server runs the app."""

    def __init__(self, app, count: int = MAX_HEADERS, size: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.count = count
        self.size = size

    async def __call__(self, scope, receive, send) -> None:
        """Check the request's headers, then pass it on."""
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            size = sum(len(name) + len(value) + 4 for name, value in headers)
            if len(headers) > self.count or size > self.size:
                message = f"{len(headers)} headers of {size} bytes; the limits are {self.count} and {self.size}"
                await send_error(send, 431, message)
                return
        await self.app(scope, receive, send)
