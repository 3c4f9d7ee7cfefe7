"""The ASGI middlewares of the app, outermost last: the request body limit, API keys, request
metrics. Each is a plain ASGI callable (no BaseHTTPMiddleware), so that it costs little."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.asgi.problems import problem_response
from service.core.auth import KeyCheck, presented_key
from service.core.errors import PayloadTooLarge
from service.core.metrics import Metrics

MODEL_SCOPE_KEY = "latentserve.model"  # the model a request resolved to, for the metrics


class BodySizeLimit:
    """Answers 413 for bodies over the limit, by Content-Length or by counting streamed bytes."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise PayloadTooLarge(self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"request body exceeds the limit of {self.max_bytes} bytes"

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, self._detail(), headers={"Connection": "close"})
        await response(scope, receive, send)


class ApiKeyAuth:
    """Answers 401 problem+json unless the request carries one of the keys or is on an open path."""

    def __init__(self, app: ASGIApp, keys: Sequence[str], open_paths: Iterable[str]) -> None:
        self.app = app
        self.check = KeyCheck(keys)
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        key = presented_key(scope["headers"])
        if key is not None and self.check.accepts(key):
            await self.app(scope, receive, send)
            return
        await self.refuse(key is not None)(scope, receive, send)

    @staticmethod
    def refuse(key_was_given: bool):
        challenge = 'Bearer realm="latentserve"'
        if key_was_given:
            challenge += ', error="invalid_token"'
            detail = "the API key is not valid"
        else:
            detail = (
                "this route needs an API key: send `Authorization: Bearer <key>` "
                "or `X-API-Key: <key>`"
            )
        return problem_response(401, detail, headers={"WWW-Authenticate": challenge})


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
