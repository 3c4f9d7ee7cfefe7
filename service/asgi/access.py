"""The outermost middleware: request IDs, the access log, and each request's trace span.

- `X-Request-ID`: the caller's, when well formed (1-128 characters of letters, digits and
  `._:/+=@-`), else a new one (32 hex digits, like nginx's `$request_id`). It is echoed on every
  response the app gives, written in the access log line, set on the request's span, and added
  to every problem+json body as `request_id`.
- The access log (logger `latentserve.access`, at INFO): one line per request, plain by
  default, or one JSON object (`LATENTSERVE_LOG_FORMAT=json`) with time, client, method, path,
  status, duration_ms, bytes, model, request_id and trace_id. The trace ID is the request span's
  when tracing is on, else the one the caller's `traceparent` carries.
- Traces (service.core.tracing): when the app traces, a SERVER span per request.

On the hot path, tracing off: one pass over the request headers, one header more on the
response, one log record.
"""

from __future__ import annotations

import logging
import os
import re
import time
from datetime import UTC, datetime

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.asgi.middleware import MODEL_SCOPE_KEY
from service.core import tracing
from service.core.media import PROBLEM_JSON

log = logging.getLogger("latentserve.access")

REQUEST_ID_SCOPE_KEY = "latentserve.request_id"
REQUEST_ID_HEADER = b"x-request-id"
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
_PROBLEM = PROBLEM_JSON.encode()


def new_request_id() -> str:
    return os.urandom(16).hex()


def request_id_of(value: bytes | None) -> str:
    """The caller's ID when well formed, else a new one."""
    if value is not None and _WELL_FORMED.fullmatch(value):
        return value.decode()
    return new_request_id()


class RequestContext:
    def __init__(
        self, app: ASGIApp, *, log_format: str = "plain", tracer: tracing.Tracing | None = None
    ) -> None:
        self.app = app
        self.json = log_format == "json"
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = traceparent = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                given = value
            elif name == b"traceparent":
                traceparent = value
        request_id = request_id_of(given)
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        trace = None
        if self.tracer is not None:
            carrier = {"traceparent": traceparent.decode("latin-1")} if traceparent else {}
            for name, value in scope["headers"]:
                if name == b"tracestate":
                    carrier["tracestate"] = value.decode("latin-1")
            trace = self.tracer.start_request(scope["method"], scope["path"], carrier, request_id)
        status = 500
        sent = 0
        held: Message | None = None  # the start of a problem+json answer, until its body
        body = b""

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent, held, body
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                message["headers"] = [*headers, id_header]
                for name, value in headers:
                    if name == b"content-type":
                        if value.startswith(_PROBLEM):
                            held = message  # sent with the body, once that has the ID in it
                            return
                        break
            elif kind == "http.response.body":
                if held is not None:
                    body += message.get("body", b"")
                    if message.get("more_body", False):
                        return
                    body = with_request_id(body, request_id)
                    await send(with_length(held, len(body)))
                    held = None
                    message = {"type": kind, "body": body}
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if trace is not None:
                route = getattr(scope.get("route"), "path", None)
                trace.end(status, route, scope.get(MODEL_SCOPE_KEY, ""))
            if log.isEnabledFor(logging.INFO):
                seconds = time.perf_counter() - start
                if trace is not None:
                    trace_id = trace.trace_id
                else:
                    trace_id = tracing.trace_id_of(
                        traceparent.decode("latin-1") if traceparent else None
                    )
                model = scope.get(MODEL_SCOPE_KEY, "")
                log.info(self._line(scope, status, seconds, sent, model, request_id, trace_id))

    def _line(
        self,
        scope: Scope,
        status: int,
        seconds: float,
        sent: int,
        model: str,
        request_id: str,
        trace_id: str | None,
    ) -> str:
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else "-"
        if self.json:
            return orjson.dumps(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "client": address,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "bytes": sent,
                    "model": model or None,
                    "request_id": request_id,
                    "trace_id": trace_id,
                }
            ).decode()
        return (
            f'{address} "{scope["method"]} {scope["path"]} HTTP/{scope.get("http_version", "1.1")}"'
            f" {status} {sent}B {seconds * 1000:.1f}ms model={model or '-'}"
            f" request_id={request_id} trace_id={trace_id or '-'}"
        )


def with_request_id(body: bytes, request_id: str) -> bytes:
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(problem, dict):
        return body
    problem["request_id"] = request_id
    return orjson.dumps(problem)


def with_length(start: Message, length: int) -> Message:
    headers = [(n, v) for n, v in start["headers"] if n != b"content-length"]
    headers.append((b"content-length", str(length).encode()))
    return {**start, "headers": headers}
