"""Prometheus metrics of the service: query and segmentation latency histograms and requests by route and status."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.routing import Match

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """One app's metrics in their own registry, so that several apps in one process never share a series."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.query_seconds = Histogram(
            "coarchive_query_seconds",
            "Latency of index queries (embedding, search, thumbnails)",
            ["kind"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.segment_seconds = Histogram(
            "coarchive_segment_seconds",
            "Latency of segmenting one uploaded image (decode, predict, overlay)",
            ["segmenter"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.query_failures = Counter(
            "coarchive_query_failures",
            "Index queries that failed, by kind and answered status (not in coarchive_query_seconds)",
            ["kind", "status"],
            registry=self.registry,
        )
        self.segment_failures = Counter(
            "coarchive_segment_failures",
            "Segmentations that failed, by segmenter and answered status (not in coarchive_segment_seconds)",
            ["segmenter", "status"],
            registry=self.registry,
        )
        self.requests = Counter(
            "coarchive_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )

    @contextmanager
    def timed(self, seconds: Histogram, failures: Counter, label: str) -> Iterator[None]:
        """Time the block into `seconds` if it succeeds; count it in `failures` by status if it raises."""
        start = time.perf_counter()
        try:
            yield
        except Exception as error:
            failures.labels(label, str(status_of(error))).inc()
            raise
        seconds.labels(label).observe(time.perf_counter() - start)

    def render(self) -> bytes:
        """The exposition text of every metric."""
        return generate_latest(self.registry)


def status_of(error: Exception) -> int:
    """The HTTP status the app answers `error` with (its error handlers' mapping)."""
    from fastapi import HTTPException

    from pipeline.app.serve.paths import PathRefusedError
    from pipeline.app.serve.uploads import UploadRefusedError

    if isinstance(error, UploadRefusedError):
        return error.status
    if isinstance(error, HTTPException):
        return error.status_code
    if isinstance(error, PathRefusedError):
        return 400
    if isinstance(error, FileNotFoundError):
        return 404
    if isinstance(error, ValueError):
        return 400
    return 500


class RequestCounter:
    """ASGI middleware (outermost): count each HTTP request by route template, method and status, those refused by
    other middleware included; mark answers nosniff."""

    def __init__(self, app, metrics: Metrics, routes: Sequence = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:
        """Pass the request on, noting the status of its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def noted(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-content-type-options", b"nosniff")]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            self.metrics.requests.labels(self._template(scope), scope.get("method", ""), str(status["code"])).inc()

    def _template(self, scope) -> str:
        """The route template of the request: from routing, or matched here for requests refused before it."""
        route = getattr(scope.get("route"), "path", None)
        if route is None:
            route = next((r.path for r in self.routes if r.matches(scope)[0] != Match.NONE), "other")
        return "/static" if route.startswith("/static") else route
