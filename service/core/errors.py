"""The errors a client can act on, protocol-neutral: each names its kind (its class, and `code`)
and says what went wrong (`detail`) so that a person can act on it. The data plane raises them;
each front end renders them in its own form: problem+json on the domain routes
(service.asgi.problems), `{"error": ...}` under /v2 (service.v2.errors), and next gRPC status
codes, all from `code`.

No HTTP here: this module imports no web framework.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error a client can act on. `retry_after`: seconds after which a retry may succeed."""

    code = "invalid_argument"

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class BadInput(ServiceError):
    """A request that was read but holds what the model cannot take (a value, a shape, a label)."""

    code = "invalid_argument"


class BadRequest(ServiceError):
    """A message its protocol cannot read (a V2 inference request that breaks the protocol)."""

    code = "malformed"


class NotFound(ServiceError):
    code = "not_found"


class UnknownModel(NotFound):
    """No such model (or graph, or version), or one that was refused."""


class NotCalibrated(ServiceError):
    """The model lacks what the request needs (an anomaly-score calibration)."""

    code = "failed_precondition"


class PayloadTooLarge(ServiceError):
    code = "too_large"


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"


class NotAcceptable(ServiceError):
    code = "not_acceptable"


class NotSupported(ServiceError):
    """A protocol call this server answers with a deliberate refusal (V2 repository control)."""

    code = "not_supported"


class NotReady(ServiceError):
    """The models are not (yet) loaded, or none could be: retry later or elsewhere."""

    code = "unavailable"


class Overloaded(NotReady):
    """A graph's queue is full or a request waited past its deadline: shed, retry later."""

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail, retry_after=retry_after)


def validation_errors(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line summary and a JSON-safe list of pydantic validation errors."""
    cleaned = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", "")}
        for error in errors
    ]
    summary = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in cleaned[:5])
    if len(cleaned) > 5:
        summary += f"; and {len(cleaned) - 5} more"
    return f"invalid request: {summary}", cleaned
