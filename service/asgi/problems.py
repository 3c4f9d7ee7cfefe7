"""Problem details (RFC 9457, `application/problem+json`): how the HTTP front ends answer every
error, the data plane's (service.core.errors) included, each by the HTTP status of its `code`."""

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

from service.core.errors import ServiceError, validation_errors
from service.core.media import PROBLEM_JSON

log = logging.getLogger("latentserve.errors")

# The HTTP status of each kind of service error.
HTTP_STATUS = {
    "invalid_argument": 422,
    "malformed": 400,
    "not_found": 404,
    "failed_precondition": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "not_acceptable": 406,
    "unavailable": 503,
    "not_supported": 403,
}


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


def problem_body(status: int, detail: str, errors: list | None = None) -> bytes:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return orjson.dumps(body)


def problem_response(
    status: int, detail: str, *, errors: list | None = None, headers: dict | None = None
) -> Response:
    return Response(problem_body(status, detail, errors), status, headers, media_type=PROBLEM_JSON)


def raw_problem(status: int, detail: str) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, for a server that answers below
    the app (service.runtime.protocol's timeouts)."""
    body = problem_body(status, detail)
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def status_of(exc: ServiceError) -> int:
    return HTTP_STATUS[exc.code]


def service_error_response(exc: ServiceError) -> Response:
    headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    return problem_response(status_of(exc), exc.detail, headers=headers)


async def _service_error(_: Request, exc: ServiceError) -> Response:
    return service_error_response(exc)


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
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(ValidationError, _pydantic_validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
