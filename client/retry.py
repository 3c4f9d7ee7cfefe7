"""When and how long to wait before sending a request again."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter on 429/503 answers and on transport errors.

    Every latentserve endpoint is a pure function of its input, so resending is always safe.
    A `Retry-After` header (in seconds) is honoured up to `max_delay`.
    """

    attempts: int = 4  # in all, the first try included
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay_after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to accept this answer."""
        if response.status_code not in RETRY_STATUSES or attempt + 1 >= self.attempts:
            return None
        retry_after = _retry_after_seconds(response)
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return self._backoff(attempt)

    def delay_after_error(self, attempt: int) -> float | None:
        """Seconds to wait after a transport error, or None to give up and re-raise it."""
        return None if attempt + 1 >= self.attempts else self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


NO_RETRY = RetryPolicy(attempts=1)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None
