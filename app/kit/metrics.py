"""Prometheus metrics. With several workers, each process writes to a shared directory
(``PROMETHEUS_MULTIPROC_DIR``, set by ``crm serve``) and ``/metrics`` aggregates them."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

REQUESTS = Counter(
    "crm_http_requests_total", "HTTP requests by route template and status",
    ["method", "route", "status"],
)  # fmt: skip
LATENCY = Histogram(
    "crm_http_request_duration_seconds", "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)  # fmt: skip
POOL_CHECKED_OUT = Gauge(
    "crm_db_pool_checked_out", "Database connections in use", multiprocess_mode="livesum"
)
POOL_SIZE = Gauge(
    "crm_db_pool_size", "Database connections held by the pool", multiprocess_mode="livesum"
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def render() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
