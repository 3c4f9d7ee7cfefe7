"""Optional API keys: a pure ASGI middleware, installed only when keys are configured.

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
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.core.errors import PROBLEM_JSON, problem_response
from service.core.settings import Settings

MIN_KEY_LENGTH = 16
ALWAYS_OPEN = ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready")  # the probes
BEARER = "bearerAuth"
API_KEY_HEADER = "apiKeyHeader"
SECURITY_SCHEMES = {
    BEARER: {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`"},
    API_KEY_HEADER: {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


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


class ApiKeyAuth:
    """Answers 401 problem+json unless the request carries one of the keys or is on an open path."""

    def __init__(self, app: ASGIApp, keys: Sequence[str], open_paths: Iterable[str]) -> None:
        self.app = app
        self.digests = [_digest(key.encode()) for key in keys]
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        key = presented_key(scope["headers"])
        if key is not None and self.accepts(key):
            await self.app(scope, receive, send)
            return
        await self.refuse(key is not None)(scope, receive, send)

    def accepts(self, key: bytes) -> bool:
        digest = _digest(key)
        matched = False
        for known in self.digests:  # no early exit: every key costs the same
            matched |= hmac.compare_digest(known, digest)
        return matched

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


def document_security(
    schema: dict[str, Any], open_paths: Iterable[str], keys_required: bool
) -> None:
    """Adds the two key schemes and applies them to every protected operation.

    Without configured keys the requirement lists `{}` too: a key is accepted but not needed.
    """
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    requirement: list[dict[str, list]] = [{BEARER: []}, {API_KEY_HEADER: []}]
    if not keys_required:
        requirement.append({})
    unauthorized = {
        "description": "No API key, or an unknown one (only where the server has API keys)",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    skip = frozenset(open_paths)
    for path, operations in schema["paths"].items():
        if path in skip:
            continue
        for operation in operations.values():
            operation["security"] = requirement
            operation.setdefault("responses", {}).setdefault("401", unauthorized)
