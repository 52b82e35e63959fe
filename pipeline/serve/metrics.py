"""Prometheus metrics of the service: query and segmentation latency histograms and requests by route and status."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

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
        self.requests = Counter(
            "coarchive_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The exposition text of every metric."""
        return generate_latest(self.registry)


class RequestCounter:
    """ASGI middleware: count each HTTP request by route template, method and status; mark answers nosniff."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

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
            route = getattr(scope.get("route"), "path", None)
            template = route or ("/static" if scope.get("path", "").startswith("/static/") else "other")
            self.metrics.requests.labels(template, scope.get("method", ""), str(status["code"])).inc()
