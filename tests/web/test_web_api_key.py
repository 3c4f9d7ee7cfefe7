"""The web page against a server that requires API keys, in headless Chromium: it asks for the
key in plain words and keeps asking, tries it as it is typed, sends it on its API calls and
remembers it in the browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.loopback import Replica, start_replica, wait_until_ready
from tests.client.conftest import shipped_models_dir
from tests.web.conftest import DESKTOP, watch

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


def notice(page) -> str:
    return page.text_content("#notice .message") if page.is_visible("#notice") else ""


def test_the_page_asks_for_the_key_sends_it_and_remembers_it(browser, keyed_server):
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    problems = watch(page, expect_statuses=(401,))
    sent: dict[str, str | None] = {}
    page.on(
        "request",
        lambda request: sent.__setitem__(request.url, request.headers.get("x-api-key")),
    )
    page.clock.install()  # to let time pass without waiting for it
    page.goto(f"{keyed_server.url}/")
    page.wait_for_selector("#notice:not([hidden])")
    asked = notice(page)
    assert "needs an API key" in asked and "API key field" in asked, asked
    for raw in ("Bearer", "Authorization", "<key>", "401"):
        assert raw not in asked, asked  # in plain words, not header syntax
    assert "needed" in page.get_attribute("#api-key", "class")
    assert page.get_attribute("body", "data-ready") is None
    assert page.is_disabled("#sample-run") and page.is_disabled("#draw-upload-button")
    # Still there long after: the page says what it waits for, not an empty page.
    page.clock.run_for(60_000)
    assert notice(page) == asked
    assert "Waiting for an API key" in page.text_content("#model-summary")

    # A wrong key, typed: tried after a pause in the typing, without Enter or leaving the field.
    page.locator("#api-key").press_sequentially("not-the-key")
    page.clock.run_for(1000)
    page.wait_for_function(
        "document.querySelector('#notice .message').textContent.includes('did not accept')"
    )
    assert page.get_attribute("body", "data-ready") is None

    # The right key, typed: the page loads.
    page.fill("#api-key", "")
    page.locator("#api-key").press_sequentially(KEY)
    page.clock.run_for(1000)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#sample-grid img').length > 0")
    assert not page.is_visible("#notice")
    assert "needed" not in (page.get_attribute("#api-key", "class") or "")
    assert page.is_enabled("#sample-run")
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
    assert not problems, problems
