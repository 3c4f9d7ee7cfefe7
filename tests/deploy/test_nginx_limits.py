"""deploy/nginx.conf applies the service's slow-client and size limits with the service's
defaults, for HTTP and, where a gRPC call's stream allows it, for gRPC."""

from __future__ import annotations

import re

from service.core.settings import Settings
from tests.conftest import ROOT

NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def without_comments(text: str) -> str:
    return re.sub(r"#.*", "", text)


def server_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of every `server { ... }` block, by matching braces."""
    spans = []
    for match in re.finditer(r"^\s*server\s*\{", text, re.M):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        spans.append((match.start(), end + 1))
    return spans


def contexts() -> tuple[str, str, str]:
    """The directives outside any server block (the `http` context that both servers
    inherit), the HTTP server block and the gRPC one (the one that listens with http2)."""
    text = without_comments(NGINX_CONF.read_text())
    spans = server_blocks(text)
    assert len(spans) == 2, "one HTTP server, one gRPC server"
    outside = text
    for start, end in reversed(spans):
        outside = outside[:start] + outside[end:]
    blocks = [text[start:end] for start, end in spans]
    (grpc,) = [b for b in blocks if re.search(r"^\s*listen\s+\S+\s+http2;", b, re.M)]
    (http,) = [b for b in blocks if b is not grpc]
    return outside, http, grpc


def directives(text: str, name: str) -> list[str]:
    return [v.strip() for v in re.findall(rf"^\s*{name}\s+([^;]+);", text, re.M)]


def directive(text: str, name: str) -> str:
    found = directives(text, name)
    assert len(found) == 1, f"{name} is set {len(found)} times here"
    return found[0]


def seconds(value: str) -> float:
    assert value.endswith("s"), value
    return float(value[:-1])


def size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def test_nginx_bounds_slow_clients_as_the_service_does():
    settings = Settings()
    outside, http, grpc = contexts()
    assert seconds(directive(outside, "client_header_timeout")) == settings.header_timeout
    assert seconds(directive(outside, "client_body_timeout")) == settings.body_timeout
    assert seconds(directive(outside, "send_timeout")) == settings.send_timeout
    assert directive(outside, "limit_conn") == f"per_server {settings.max_connections}"
    assert directive(outside, "limit_conn_status") == "503"
    # The HTTP server overrides none of them; the gRPC server keeps the head and send limits
    # and the connection cap (one per call over HTTP/2), and only lets a stream wait.
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout", "limit_conn"):
        assert directives(http, name) == [], name
    for name in ("client_header_timeout", "send_timeout", "limit_conn", "limit_conn_status"):
        assert directives(grpc, name) == [], name


def test_http_bodies_pass_up_to_the_service_which_answers_its_own_413():
    outside, http, _ = contexts()
    assert size(directive(outside, "client_max_body_size")) > Settings().max_body_bytes
    assert directives(http, "client_max_body_size") == []


def test_grpc_streams_are_bounded_per_message_by_the_replica_not_per_call_by_nginx():
    """nginx counts a call's whole request body (every message of a stream) against
    client_max_body_size and cuts the stream past it (RST_STREAM, INTERNAL at the client: seen
    with a 100k limit after 32 requests); the replica refuses a message over MAX_BODY_BYTES
    itself (RESOURCE_EXHAUSTED). An idle stream is cut after client_body_timeout (while
    waiting for the client's next request) or grpc_read_timeout (for the replica's next
    answer), both seen with 3 s: the same long wait for both."""
    _, _, grpc = contexts()
    assert directive(grpc, "client_max_body_size") == "0"
    wait = seconds(directive(grpc, "client_body_timeout"))
    assert wait >= 600
    assert seconds(directive(grpc, "grpc_read_timeout")) == wait
    assert seconds(directive(grpc, "grpc_send_timeout")) == wait
    assert seconds(directive(grpc, "grpc_connect_timeout")) <= 5
