"""Problem details (RFC 9457, `application/problem+json`) for every error the service answers."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("latentserve.errors")

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """The body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None
    request_id: str | None = Field(
        None, description="The request's X-Request-ID (given or generated), as in the logs."
    )


class ApiError(Exception):
    """An error a client can act on; rendered as problem+json with its status."""

    status = 400

    def __init__(self, detail: str, *, status: int | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status or self.status
        self.headers = headers


class BadInput(ApiError):
    status = 422


class UnknownModel(ApiError):
    status = 404


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class NotAcceptable(ApiError):
    status = 406


class NotReady(ApiError):
    status = 503


class Overloaded(ApiError):
    """A graph's queue is full or a request waited past its deadline: shed, retry later."""

    status = 503

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(
    status: int, detail: str, *, errors: list | None = None, headers: dict | None = None
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def validation_errors(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line summary and a JSON-safe list of pydantic/FastAPI validation errors."""
    cleaned = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", "")}
        for error in errors
    ]
    summary = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in cleaned[:5])
    if len(cleaned) > 5:
        summary += f"; and {len(cleaned) - 5} more"
    return f"invalid request: {summary}", cleaned


async def _api_error(_: Request, exc: ApiError) -> Response:
    return problem_response(exc.status, exc.detail, headers=exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such route; see /docs for the API"
    elif exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
        detail = f"{request.method} is not allowed here; use {exc.headers['Allow']}"
    return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _request_validation_error(_: Request, exc: RequestValidationError) -> Response:
    detail, errors = validation_errors(list(exc.errors()))
    return problem_response(422, detail, errors=errors)


async def _pydantic_validation_error(_: Request, exc: ValidationError) -> Response:
    detail, errors = validation_errors(list(exc.errors(include_url=False, include_input=False)))
    return problem_response(422, detail, errors=errors)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal error; it has been logged")


async def _client_disconnect(_: Request, __: ClientDisconnect) -> Response:
    # The client hung up while its request was read: nothing to log, nobody to answer; 499 is
    # what the metrics record (nginx's "client closed request").
    return Response(status_code=499)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(ValidationError, _pydantic_validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


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
