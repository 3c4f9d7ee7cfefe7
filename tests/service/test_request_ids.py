"""X-Request-ID on every response, in every problem body and in the access log; the access log
plain by default and JSON as a setting (service/asgi/access.py)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.service.conftest import Server, start_server, stop_server
from tests.service.helpers import b64, png, random_digit

pytestmark = pytest.mark.slow

GOOD = {"images": [b64(png(random_digit(0)))]}
HEX32 = re.compile(r"[0-9a-f]{32}")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def json_server(fixture_models, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "json-log-server.log"
    server = start_server(fixture_models, log, default_model="tiny-vae", log_format="json")
    yield server
    stop_server(server)


def access_lines(server: Server, request_id: str, timeout: float = 5) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in server.log.read_text().splitlines() if request_id in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_well_formed_request_id_is_echoed(api):
    for given in ("abc-123", "0f5e1d2c-3b4a-4c5d-8e9f-0a1b2c3d4e5f", "Root=1-5759e988:x/y+z@q"):
        response = api.post("/encode", json=GOOD, headers={"X-Request-ID": given})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "é"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_new_one(api, given):
    headers = {} if given is None else {"X-Request-ID": given.encode()}
    first = api.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = api.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert HEX32.fullmatch(first) and HEX32.fullmatch(second) and first != second


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/no-such-route", {}, 404),
        ("POST", "/encode", {"json": {"images": "nope"}}, 422),
        ("POST", "/encode?model=absent", {"json": GOOD}, 404),
        ("POST", "/encode", {"content": b"\0" * 2_100_000}, 413),  # from the size middleware
        ("PUT", "/encode", {}, 405),
    ],
)
def test_every_problem_body_carries_the_request_id(api, method, path, kwargs, status):
    headers = {"X-Request-ID": "problem-42", **kwargs.pop("headers", {})}
    response = api.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["X-Request-ID"] == "problem-42"
    problem = response.json()
    assert problem["request_id"] == "problem-42" and problem["status"] == status
    assert int(response.headers["content-length"]) == len(response.content)


def test_a_generated_request_id_is_the_one_in_the_problem_body(api):
    response = api.get("/no-such-route")
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


def test_v2_errors_keep_their_form_and_carry_the_header(api):
    response = api.post("/v2/models/absent/infer", json={}, headers={"X-Request-ID": "v2-1"})
    assert response.status_code >= 400
    assert response.headers["X-Request-ID"] == "v2-1"
    assert "error" in response.json()


def test_the_plain_access_log_has_the_request_id(fixture_server):
    with fixture_server.client() as api:  # the server whose log is read
        api.post("/encode", json=GOOD, headers={"X-Request-ID": "plain-log-1"})
    (line,) = access_lines(fixture_server, "plain-log-1")
    assert '"POST /encode HTTP/1.1" 200' in line
    assert "model=tiny-vae" in line and "request_id=plain-log-1" in line


def test_the_json_access_log_has_every_field(json_server):
    with json_server.client() as http:
        response = http.post(
            "/encode?model=tiny-vae",
            json=GOOD,
            headers={"X-Request-ID": "json-log-1", "traceparent": TRACEPARENT},
        )
        http.get("/nothing-here", headers={"X-Request-ID": "json-log-2"})
    assert response.status_code == 200
    (line,) = access_lines(json_server, "json-log-1")
    record = json.loads(line)
    assert set(record) == {
        "time", "client", "method", "path", "status", "duration_ms", "bytes", "model",
        "request_id", "trace_id",
    }  # fmt: skip
    assert record["method"] == "POST" and record["path"] == "/encode"
    assert record["status"] == 200 and record["model"] == "tiny-vae"
    assert record["bytes"] == len(response.content) and record["duration_ms"] > 0
    assert record["request_id"] == "json-log-1"
    assert record["trace_id"] == TRACE_ID, "tracing off: the caller's trace ID"
    (line,) = access_lines(json_server, "json-log-2")
    record = json.loads(line)
    assert record["status"] == 404 and record["trace_id"] is None and record["model"] is None
