"""The client's exceptions: `LatentServeError` for an answer the server refused, and its
subclass `ConnectionFailed` for no answer at all (nothing listening, a timeout, a broken
connection), so that one `except LatentServeError` catches everything a call can raise."""

from __future__ import annotations

import re
from typing import Any

import httpx


class LatentServeError(Exception):
    """An HTTP error answer, carrying the server's problem details (RFC 9457).

    Answers that are not problem+json (a proxy's HTML 502, say) still get a status, a title
    (the reason phrase) and a detail (the start of the body).
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.errors = errors

    @classmethod
    def from_response(cls, response: httpx.Response) -> LatentServeError:
        reason = response.reason_phrase or "Error"
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return cls(response.status_code, reason, response.text[:500].strip() or reason)
        return cls(
            int(body.get("status", response.status_code)),
            str(body.get("title", reason)),
            str(body.get("detail", "")),
            type=str(body.get("type", "about:blank")),
            errors=body.get("errors"),
        )


class ConnectionFailed(LatentServeError):
    """No answer from the server: it could not be reached, or the exchange broke off.

    `status` is 0 (no HTTP status was received), `url` the address tried, and the httpx error
    it wraps is `__cause__`.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, "No answer", f"cannot reach {url}: {reason}")
        self.args = (self.detail,)  # str(error): the sentence, without a status it never had
        self.url = url
        self.reason = reason

    @classmethod
    def from_transport(cls, error: httpx.TransportError, url: str) -> ConnectionFailed:
        return cls(url, describe_transport_error(error))


def describe_transport_error(error: httpx.TransportError) -> str:
    """A transport error in a few words: "connection refused", "timed out reading", ..."""
    if isinstance(error, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for the answer",
            httpx.WriteTimeout: "sending the request",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(error), "")
        return f"timed out {phase}".strip()
    text = str(error).strip()
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)  # "[Errno 111] Connection refused"
    if not text:
        return type(error).__name__
    first = text.splitlines()[0].rstrip(".")
    return first[:1].lower() + first[1:]
