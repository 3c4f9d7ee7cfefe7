"""OpenTelemetry traces of the request path: off unless configured, nothing imported when off.

On with `LATENTSERVE_OTLP_ENDPOINT` (OTLP over HTTP, e.g. http://collector:4318/v1/traces;
the SDK and exporter come with the `tracing` extra), or with a tracer provider handed to
`create_app` (the tests use the SDK's in-memory exporter). Each request then yields:

- `POST /encode` (kind SERVER): the whole request, a child of the caller's W3C `traceparent`
  when it sends one; attributes: method, route, status, model, `latentserve.request_id`;
- `queue wait`: one per graph call of the request, from entering the graph's queue to its
  batch starting (a child of the request's span);
- `batch <model>/<graph>`: the graph call of the batch that served it, a child of the first
  request in the batch and linked to every request it served (their spans are its links).

Off, the middleware and the graph runner test one module flag (`ENABLED`) and go on.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

ENABLED = False  # set once an app of this process traces; read on the hot path
_current: ContextVar[RequestTrace | None] = ContextVar("latentserve_trace", default=None)
TRACER_NAME = "latentserve"


def current() -> RequestTrace | None:
    """The trace of the request this task serves, if it is traced."""
    return _current.get()


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace ID of a well-formed W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`)."""
    if not traceparent or len(traceparent) < 55:
        return None
    parts = traceparent.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or parts[0] == "ff":
        return None
    try:
        if int(parts[1], 16) == 0 or int(parts[2], 16) == 0:
            return None
    except ValueError:
        return None
    return parts[1].lower()


class Tracing:
    """One app's tracer and the W3C trace-context propagator."""

    def __init__(self, provider: Any, shutdown: bool = False) -> None:
        global ENABLED
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self._shutdown = shutdown  # a provider made here is flushed and closed at exit
        self.tracer = provider.get_tracer(TRACER_NAME)
        self._trace = trace
        self._context = otel_context
        self._propagator = TraceContextTextMapPropagator()
        ENABLED = True

    @classmethod
    def configure(cls, endpoint: str | None, provider: Any = None) -> Tracing | None:
        """The app's tracing: a given provider, else an OTLP exporter to `endpoint`, else None."""
        if provider is not None:
            return cls(provider)
        if not endpoint:
            return None
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise RuntimeError(
                "LATENTSERVE_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
                "pip install 'latentserve[tracing]'"
            ) from exc
        made = TracerProvider(resource=Resource.create({"service.name": "latentserve"}))
        made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(made, shutdown=True)

    def start_request(
        self, method: str, path: str, carrier: dict[str, str], request_id: str
    ) -> RequestTrace:
        parent = self._propagator.extract(carrier) if carrier else None
        span = self.tracer.start_span(
            f"{method} {path}",
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": path,
                "latentserve.request_id": request_id,
            },
        )
        trace = RequestTrace(self, span, method)
        trace.tokens = (
            _current.set(trace),
            self._context.attach(self._trace.set_span_in_context(span)),
        )
        return trace

    def close(self) -> None:
        if self._shutdown:
            self.provider.shutdown()


@dataclass(eq=False)
class RequestTrace:
    tracing: Tracing
    span: Any
    method: str
    tokens: tuple = ()

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def end(self, status: int, route: str | None, model: str) -> None:
        span = self.span
        span.set_attribute("http.response.status_code", status)
        if route:
            span.set_attribute("http.route", route)
            span.update_name(f"{self.method} {route}")
        if model:
            span.set_attribute("latentserve.model", model)
        if status >= 500:
            span.set_status(self.tracing._trace.Status(self.tracing._trace.StatusCode.ERROR))
        span.end()
        current_token, otel_token = self.tokens
        self.tracing._context.detach(otel_token)
        _current.reset(current_token)


def batch_span(graph: str, requests: list, images: int) -> Any:
    """The spans of one batch about to run: a `queue wait` for each traced request in it (its
    `trace` and `enqueued_ns`), and the batch's own span, returned open (None: none traced)."""
    traced = [r for r in requests if r.trace is not None]
    if not traced:
        return None
    tracing = traced[0].trace.tracing
    trace = tracing._trace
    now = time.time_ns()
    for request in traced:
        wait = tracing.tracer.start_span(
            "queue wait",
            context=trace.set_span_in_context(request.trace.span),
            start_time=request.enqueued_ns,
            attributes={"latentserve.graph": graph},
        )
        wait.end(end_time=now)
    return tracing.tracer.start_span(
        f"batch {graph}",
        context=trace.set_span_in_context(traced[0].trace.span),
        links=[trace.Link(r.trace.span.get_span_context()) for r in traced],
        start_time=now,
        attributes={
            "latentserve.graph": graph,
            "latentserve.batch.images": images,
            "latentserve.batch.requests": len(requests),
        },
    )


def end_batch(span: Any, error: BaseException | None = None) -> None:
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error)))
    span.end()
