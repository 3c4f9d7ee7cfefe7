"""The one exception the client raises for an answer the server refused."""

from __future__ import annotations

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
