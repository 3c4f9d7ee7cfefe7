"""Optional API keys on a real server: who gets in, the 401s, the documented schemes, and the
Python client and batch CLI passing a key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from client import AsyncClient, Client, LatentServeError
from client.batch import main as batch_main
from service.app import create_app
from service.asgi.middleware import ApiKeyAuth
from service.core.auth import configured_keys
from service.core.settings import Settings
from tests.service.conftest import Server, start_server, stop_server
from tests.service.helpers import assert_problem

ENV_KEY = "env-key-0123456789abcdef"
FILE_KEY = "file-key-fedcba9876543210"
WRONG_KEY = "wrong-key-0000000000000000"
PROTECTED = [("GET", "/models"), ("GET", "/sample?n=1"), ("GET", "/metrics"), ("GET", "/nowhere")]


@pytest.fixture(scope="module")
def keyed_server(fixture_models: Path, tmp_path_factory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("keys")
    key_file = folder / "keys.txt"
    key_file.write_text(f"# one key per line\n\n{FILE_KEY}\n")
    server = start_server(
        fixture_models,
        folder / "server.log",
        default_model="tiny-vae",
        api_keys=ENV_KEY,
        api_key_file=str(key_file),
        log_level="debug",
    )
    yield server
    stop_server(server)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_api_routes_refuse_a_request_without_a_key(keyed_server, method, path):
    response = httpx.request(method, keyed_server.url + path)
    body = assert_problem(response, 401, "needs an API key", "X-API-Key")
    assert response.headers["www-authenticate"] == 'Bearer realm="latentserve"'
    assert body["title"] == "Unauthorized"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {WRONG_KEY}"},
        {"X-API-Key": WRONG_KEY},
        {"Authorization": f"Basic {ENV_KEY}"},  # a key under another scheme is no key
        {"X-API-Key": ENV_KEY[:-1]},
        {"X-API-Key": ENV_KEY + "x"},
    ],
)
def test_a_wrong_key_is_refused_without_echoing_it(keyed_server, headers):
    response = httpx.get(f"{keyed_server.url}/models", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    if "Basic" not in headers.get("Authorization", ""):
        assert "invalid_token" in response.headers["www-authenticate"]
        assert_problem(response, 401, "not valid")
    for value in headers.values():
        assert value.split()[-1] not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ENV_KEY}"},
        {"authorization": f"bearer {FILE_KEY}"},
        {"X-API-Key": ENV_KEY},
        {"X-API-Key": FILE_KEY},
    ],
)
def test_every_configured_key_opens_the_api(keyed_server, headers):
    with keyed_server.client(headers=headers) as api:
        assert api.get("/models").json()["default"] == "tiny-vae"
        decoded = api.post("/decode", json={"latents": [[0.0] * 4]})
        assert decoded.status_code == 200 and decoded.json()["images"]
        assert "latentserve_requests_total" in api.get("/metrics").text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/app.js", "/docs", "/openapi.json"])
def test_probes_the_page_and_the_docs_stay_open(keyed_server, path):
    assert httpx.get(keyed_server.url + path).status_code == 200


def test_the_served_document_requires_a_key_on_protected_operations(keyed_server):
    document = httpx.get(f"{keyed_server.url}/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>`",
    }
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    paths = document["paths"]
    required = [{"bearerAuth": []}, {"apiKeyHeader": []}]
    for path in ("/encode", "/decode", "/sample", "/models/{name}", "/metrics"):
        for operation in paths[path].values():
            assert operation["security"] == required, path
            assert "401" in operation["responses"]
    for path in ("/healthz", "/readyz"):
        assert "security" not in paths[path]["get"]


def test_the_committed_document_makes_the_key_optional():
    document = create_app(Settings()).openapi()
    assert document["paths"]["/encode"]["post"]["security"][-1] == {}
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_keys_never_reach_the_log(keyed_server):
    httpx.get(f"{keyed_server.url}/models", headers={"X-API-Key": WRONG_KEY})
    httpx.get(f"{keyed_server.url}/models", headers={"X-API-Key": ENV_KEY})
    log = keyed_server.log.read_text()
    assert "GET /models" in log  # the access log is on: the requests were logged, the keys not
    for key in (ENV_KEY, FILE_KEY, WRONG_KEY):
        assert key not in log


def test_without_keys_the_middleware_is_not_installed():
    open_app = create_app(Settings())
    keyed_app = create_app(Settings(api_keys=ENV_KEY))
    assert ApiKeyAuth not in [m.cls for m in open_app.user_middleware]
    assert ApiKeyAuth in [m.cls for m in keyed_app.user_middleware]


def test_metrics_can_be_made_public(fixture_models, tmp_path):
    server = start_server(
        fixture_models, tmp_path / "server.log", api_keys=ENV_KEY, public_metrics="true"
    )
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        assert httpx.get(f"{server.url}/models").status_code == 401
    finally:
        stop_server(server)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"api_keys": "short"}, ["number 1", "16 characters"]),
        ({"api_key_file": "/nonexistent/keys"}, ["cannot read", "/nonexistent/keys"]),
    ],
)
def test_unusable_keys_stop_the_start_up_with_the_reason(settings, words):
    with pytest.raises(ValueError) as refused:
        configured_keys(Settings(**settings))
    for word in words:
        assert word in str(refused.value)
    assert settings.get("api_keys", "-") not in str(refused.value)


def test_an_empty_key_file_is_refused(tmp_path):
    empty = tmp_path / "keys"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ValueError, match="holds no key"):
        configured_keys(Settings(api_key_file=empty))


def test_settings_do_not_show_the_keys():
    settings = Settings(api_keys=f"{ENV_KEY},{FILE_KEY}")
    assert ENV_KEY not in repr(settings) and ENV_KEY not in str(settings.model_dump())


def test_the_python_client_passes_its_key(keyed_server):
    with Client(keyed_server.url, api_key=FILE_KEY) as client:
        assert len(client.decode(np.zeros((2, 4), np.float32)).images) == 2
        assert "latentserve_requests_total" in client.metrics()
    with Client(keyed_server.url) as client, pytest.raises(LatentServeError) as refused:
        client.models()
    assert refused.value.status == 401 and "API key" in refused.value.detail


def test_the_async_client_passes_its_key(keyed_server):
    async def calls() -> tuple[int, int]:
        async with AsyncClient(keyed_server.url, api_key=ENV_KEY) as client:
            samples = await client.sample(3, seed=1)
        async with AsyncClient(keyed_server.url, api_key=WRONG_KEY) as client:
            try:
                await client.models()
            except LatentServeError as error:
                return len(samples.images), error.status
        return len(samples.images), 200

    assert asyncio.run(calls()) == (3, 401)


def test_the_batch_cli_takes_a_key_by_option_or_environment(keyed_server, tmp_path, monkeypatch):
    base = ["--url", keyed_server.url, "--model", "tiny-vae"]
    sample = ["sample", "-n", "2", "-o"]
    assert batch_main([*base, "--api-key", ENV_KEY, *sample, str(tmp_path / "a")]) == 0
    assert len(list((tmp_path / "a").glob("*.png"))) == 2
    monkeypatch.setenv("LATENTSERVE_API_KEY", FILE_KEY)
    assert batch_main([*base, *sample, str(tmp_path / "b")]) == 0
    assert len(list((tmp_path / "b").glob("*.png"))) == 2
    monkeypatch.delenv("LATENTSERVE_API_KEY")
    assert batch_main([*base, *sample, str(tmp_path / "c")]) == 1
