"""OpenTelemetry traces (service/core/tracing.py), read from the SDK's in-memory exporter.

A replica runs in this process (uvicorn in a thread, `create_app(..., tracer_provider=...)`)
behind the repo's nginx config (Debian's nginx, as in test_loopback_topology.py): one request
through nginx with a W3C traceparent yields one trace: the request's SERVER span (a child of
the caller's span, the request ID among its attributes), its queue wait and the batch's graph
call, linked to the request. Concurrent requests share batch spans through links.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.loopback import Nginx, start_nginx
from service.core.settings import Settings
from tests.conftest import skip_or_fail
from tests.service.conftest import free_port
from tests.service.helpers import b64, png, random_digit

pytestmark = pytest.mark.slow

GOOD = {"images": [b64(png(random_digit(0)))]}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@dataclass
class Traced:
    url: str  # nginx in front
    exporter: object
    nginx: Nginx
    nginx_log: Path


@pytest.fixture(scope="module")
def traced(fixture_models, tmp_path_factory) -> Iterator[Traced]:
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        skip_or_fail("opentelemetry-sdk missing: pip install -e '.[dev]' (the tracing extra)")
    import uvicorn

    from service.app import create_app

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    port = free_port()
    settings = Settings(model_dir=fixture_models, default_model="tiny-vae", port=port, grpc_port=0)
    app = create_app(settings, tracer_provider=provider)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the traced replica did not become ready"
        time.sleep(0.1)
    workdir = tmp_path_factory.mktemp("traced-nginx")
    nginx = start_nginx([port], workdir)
    try:
        yield Traced(nginx.url, exporter, nginx, workdir / "nginx.log")
    finally:
        nginx.stop()
        server.should_exit = True
        thread.join(timeout=30)


def spans_of(exporter, trace_id: int, count: int, timeout: float = 5) -> list:
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


def test_one_request_through_nginx_is_one_trace_with_its_spans(traced):
    from opentelemetry.trace import SpanKind

    response = httpx.post(
        f"{traced.url}/encode",
        json=GOOD,
        headers={
            "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
            "X-Request-ID": "trace-me-1",
        },
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "trace-me-1"
    spans = spans_of(traced.exporter, int(CALLER_TRACE, 16), 3)
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"POST /encode", "queue wait", "batch tiny-vae/encoder"}, by_name

    request = by_name["POST /encode"]
    assert request.kind == SpanKind.SERVER
    assert request.parent.span_id == int(CALLER_SPAN, 16), "a child of the caller's span"
    assert request.attributes["latentserve.request_id"] == "trace-me-1"
    assert request.attributes["http.route"] == "/encode"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["latentserve.model"] == "tiny-vae"

    wait, batch = by_name["queue wait"], by_name["batch tiny-vae/encoder"]
    assert wait.parent.span_id == request.context.span_id
    assert batch.parent.span_id == request.context.span_id
    assert [link.context.span_id for link in batch.links] == [request.context.span_id]
    assert batch.attributes["latentserve.batch.images"] == 1
    assert request.start_time <= wait.start_time <= wait.end_time <= batch.start_time
    assert batch.end_time <= request.end_time


def test_nginx_makes_the_request_id_when_the_client_sends_none(traced):
    response = httpx.get(f"{traced.url}/models", timeout=30)
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32, "nginx's $request_id"
    (span,) = [
        s
        for s in traced.exporter.get_finished_spans()
        if s.attributes.get("latentserve.request_id") == request_id
    ]
    assert span.name == "GET /models" and span.parent is None, "no traceparent: a new trace"
    deadline = time.monotonic() + 5
    while f"request_id={request_id}" not in traced.nginx_log.read_text():
        assert time.monotonic() < deadline, "nginx's access log lacks the request ID"
        time.sleep(0.05)


def test_a_batch_of_concurrent_requests_links_every_request_it_served(traced):
    traced.exporter.clear()

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{traced.url}/encode", json=GOOD, timeout=30)

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(post, range(64)))
    assert {r.status_code for r in responses} == {200}
    time.sleep(0.2)
    spans = traced.exporter.get_finished_spans()
    requests = {s.context.span_id: s for s in spans if s.name == "POST /encode"}
    batches = [s for s in spans if s.name.startswith("batch ")]
    assert len(requests) == 64
    linked = [link.context.span_id for batch in batches for link in batch.links]
    assert sorted(linked) == sorted(requests), "each request served by exactly one batch"
    for batch in batches:
        assert batch.attributes["latentserve.batch.requests"] == len(batch.links)
        assert batch.parent.span_id == batch.links[0].context.span_id
    waits = [s for s in spans if s.name == "queue wait"]
    assert sorted(w.parent.span_id for w in waits) == sorted(requests)


def test_problem_answers_are_traced_with_their_status(traced):
    response = httpx.get(f"{traced.url}/no-such-route", headers={"X-Request-ID": "t-404"})
    assert response.status_code == 404 and response.json()["request_id"] == "t-404"
    (span,) = [
        s
        for s in traced.exporter.get_finished_spans()
        if s.attributes.get("latentserve.request_id") == "t-404"
    ]
    assert span.attributes["http.response.status_code"] == 404


def test_tracing_is_off_without_an_endpoint_and_otlp_with_one():
    from service.core.tracing import Tracing, trace_id_of

    assert Tracing.configure(None) is None and Tracing.configure("") is None
    made = Tracing.configure("http://127.0.0.1:9/v1/traces")  # nothing is sent: no span made
    assert made is not None and type(made.provider).__name__ == "TracerProvider"
    made.close()
    assert trace_id_of(f"00-{CALLER_TRACE}-{CALLER_SPAN}-01") == CALLER_TRACE
    for bad in (
        "",
        "00-xyz",
        f"00-{'0' * 32}-{CALLER_SPAN}-01",
        f"ff-{CALLER_TRACE}-{CALLER_SPAN}-01",
    ):
        assert trace_id_of(bad) is None
