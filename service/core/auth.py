"""Optional API keys: which keys are configured, which paths stay open, and whether a presented
key is one of them (the check; service.asgi.middleware.ApiKeyAuth applies it to HTTP requests).

A key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys are kept only as
SHA-256 digests and every configured digest is compared with `hmac.compare_digest`, so neither
the matching key nor its length shows in the timing. Liveness, readiness, the web page's files
and the API docs stay open (a page must load before it can ask for a key); everything else,
unknown paths included, needs a key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from service.core.settings import Settings

MIN_KEY_LENGTH = 16
ALWAYS_OPEN = ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready")  # the probes


class KeyConfigError(ValueError):
    """The configured keys cannot be used; the message says why (never the key itself)."""


def configured_keys(settings: Settings) -> list[str]:
    """The keys of LATENTSERVE_API_KEYS and LATENTSERVE_API_KEY_FILE (one per line, # comments)."""
    keys = [secret.get_secret_value() for secret in settings.api_keys]
    if settings.api_key_file is not None:
        path = settings.api_key_file
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise KeyConfigError(f"cannot read the API key file {path}: {exc.strerror}") from exc
        from_file = [line.strip() for line in lines]
        from_file = [line for line in from_file if line and not line.startswith("#")]
        if not from_file:
            raise KeyConfigError(f"the API key file {path} holds no key")
        keys += from_file
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_LENGTH or any(char.isspace() for char in key):
            raise KeyConfigError(
                f"API key number {number} is unusable: keys need at least {MIN_KEY_LENGTH} "
                "characters and no whitespace"
            )
    return keys


def open_paths(settings: Settings, page_files: Iterable[str], docs_paths: Iterable[str]) -> set:
    paths = {*ALWAYS_OPEN, *docs_paths, "/", *(f"/{name}" for name in page_files)}
    if settings.public_metrics:
        paths.add("/metrics")
    return paths


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.strip()
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                return token.strip()
    return None


class KeyCheck:
    """The configured keys, kept as digests; `accepts` costs the same whichever key matches."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.digests = [_digest(key.encode()) for key in keys]

    def accepts(self, key: bytes) -> bool:
        digest = _digest(key)
        matched = False
        for known in self.digests:  # no early exit: every key costs the same
            matched |= hmac.compare_digest(known, digest)
        return matched
