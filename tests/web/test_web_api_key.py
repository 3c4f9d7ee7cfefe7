"""The web page against a server that requires API keys, in headless Chromium: it asks for the
key, sends it on its API calls and remembers it in the browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.loopback import Replica, start_replica, wait_until_ready
from tests.client.conftest import shipped_models_dir

pytestmark = pytest.mark.slow

KEY = "web-page-key-0123456789"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> Iterator[Replica]:
    replica = start_replica(
        shipped_models_dir(), tmp_path_factory.mktemp("keyed"), {"LATENTSERVE_API_KEYS": KEY}
    )
    try:
        wait_until_ready(f"{replica.url}/readyz", replica.process)
        yield replica
    finally:
        replica.stop()


def test_the_page_asks_for_the_key_sends_it_and_remembers_it(browser, keyed_server):
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    sent: dict[str, str | None] = {}
    page.on(
        "request",
        lambda request: sent.__setitem__(request.url, request.headers.get("x-api-key")),
    )
    page.goto(f"{keyed_server.url}/")
    page.wait_for_selector("#toast:not([hidden])")
    assert "API key" in page.text_content("#toast")
    assert "needed" in page.get_attribute("#api-key", "class")
    assert page.get_attribute("body", "data-ready") is None

    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#sample-grid img').length > 0")
    api_calls = {url: key for url, key in sent.items() if "/models" in url or "/sample" in url}
    assert any(key == KEY for key in api_calls.values()), api_calls
    assert sent[f"{keyed_server.url}/app.js"] is None  # static files need no key
    assert page.evaluate("localStorage.getItem('latentserve.apiKey')") == KEY

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-api-key.png"))
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.input_value("#api-key") == KEY
    context.close()
