"""Prometheus metrics: requests and latency per route and model, inference time, images."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MODEL_SCOPE_KEY = "latentserve.model"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


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

    def observe_inference(self, model: str, graph: str, seconds: float, images: int) -> None:
        self.inference.labels(model, graph).observe(seconds)
        self.images.labels(model, graph).inc(images)


class MetricsMiddleware:
    """Counts and times each request under its route template and the model it resolved to."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            model = scope.get(MODEL_SCOPE_KEY, "")
            self.metrics.requests.labels(route, model, str(status)).inc()
            self.metrics.latency.labels(route, model).observe(time.perf_counter() - start)
