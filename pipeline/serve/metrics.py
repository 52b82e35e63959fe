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
