"""Errors under /v2 in the protocol's form: `{"error": "..."}`, the 422 of bad input as 400."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.media import JSON, PROBLEM_JSON

V2_PREFIX = "/v2"


class ErrorBodies:
    """Under /v2, error responses are the protocol's `{"error": "..."}` instead of problem+json,
    and the 422 the domain routes answer for bad input is the protocol's 400.

    A middleware, so that every error takes the protocol's form: the routes', the unknown paths',
    the body size limit's and those of any middleware inside this one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == V2_PREFIX or path.startswith(V2_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def send_translated(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and _is_problem(message):
                held = message
                return
            if held is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_error(send, held, b"".join(chunks))

        await self.app(scope, receive, send_translated)


def _is_problem(start: Message) -> bool:
    return any(
        key == b"content-type" and value.startswith(PROBLEM_JSON.encode())
        for key, value in start["headers"]
    )


async def _send_error(send: Send, start: Message, problem: bytes) -> None:
    try:
        detail = orjson.loads(problem)["detail"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        detail = problem.decode(errors="replace")
    body = orjson.dumps({"error": detail})
    status = 400 if start["status"] == 422 else start["status"]
    headers = [
        (key, value)
        for key, value in start["headers"]
        if key not in (b"content-type", b"content-length")
    ]
    headers += [(b"content-type", JSON.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
