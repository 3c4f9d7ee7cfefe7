"""Fixtures of the browser tests: the service with the shipped models, and headless Chromium."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.client import conftest as client_fixtures  # noqa: E402

server = client_fixtures.server  # the same real server fixture as the client tests

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # headless as root in containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module scope: Playwright's sync API runs an event loop on this thread while it lives, which
# would break asyncio.run() in tests collected after these.
@pytest.fixture(scope="module")
def browser() -> Iterator:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        from tests.conftest import skip_or_fail

        skip_or_fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server) -> Iterator:
    """The page at `/`, loaded and ready; fails the test on any script error or console error."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.goto(f"{server.url}/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    yield page
    context.close()
    assert not problems, problems
