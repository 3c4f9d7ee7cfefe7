"""Prometheus metrics: requests and latency per route and model; per graph: inference time,
images, batch sizes, queue waits, queue depth and shed requests. (The collectors; what counts
HTTP requests is service.asgi.middleware.MetricsMiddleware.)"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # set by service.runtime.workers for several workers

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
WAIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

QueueDepths = Callable[[], Iterable[tuple[str, str, int]]]  # (model, graph, waiting requests)


class Metrics:
    """One set of collectors on its own registry, so several apps can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "latentserve_requests",
            "HTTP requests answered.",
            ["route", "model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "latentserve_request_duration_seconds",
            "Time from request to the end of the response.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "latentserve_inference_seconds",
            "Time spent in one encoder or decoder call.",
            ["model", "graph"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.images = Counter(
            "latentserve_images_processed",
            "Images encoded, decoded or generated.",
            ["model", "graph"],
            registry=self.registry,
        )

        self.batch_size = Histogram(
            "latentserve_batch_size",
            "Images in one graph call (dynamic batching coalesces concurrent requests).",
            ["model", "graph"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "latentserve_queue_wait_seconds",
            "Time a request waited in its graph's queue before its batch started.",
            ["model", "graph"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.shed = Counter(
            "latentserve_shed",
            "Requests refused with 503 by a graph's queue (reason: queue_full or deadline).",
            ["model", "graph", "reason"],
            registry=self.registry,
        )

    def runner_observer(self, model: str, graph: str) -> GraphObserver:
        return GraphObserver(self, model, graph)

    def scrape(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its media type; with several workers, the
        sums over all of them."""
        registry = self.registry
        if METRICS_DIR_ENV in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def watch_queues(self, depths: QueueDepths) -> None:
        """Report the queue depth of every graph at scrape time (nothing on the hot path)."""
        self.registry.register(_QueueDepthCollector(depths))


class GraphObserver:
    """The metrics of one graph, with their label children resolved once."""

    def __init__(self, metrics: Metrics, model: str, graph: str) -> None:
        self._inference = metrics.inference.labels(model, graph)
        self._images = metrics.images.labels(model, graph)
        self._batch_size = metrics.batch_size.labels(model, graph)
        self._queue_wait = metrics.queue_wait.labels(model, graph)
        self._shed = {
            reason: metrics.shed.labels(model, graph, reason)
            for reason in ("queue_full", "deadline")
        }

    def batch(self, images: int, seconds: float) -> None:
        self._inference.observe(seconds)
        self._images.inc(images)
        self._batch_size.observe(images)

    def waited(self, seconds: float) -> None:
        self._queue_wait.observe(seconds)

    def shed(self, reason: str) -> None:
        self._shed[reason].inc()


class _QueueDepthCollector:
    def __init__(self, depths: QueueDepths) -> None:
        self._depths = depths

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "latentserve_queue_depth",
            "Requests waiting in a graph's queue.",
            labels=["model", "graph"],
        )
        for model, graph, depth in self._depths():
            gauge.add_metric([model, graph], depth)
        yield gauge
