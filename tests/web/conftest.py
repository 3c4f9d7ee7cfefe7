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


DESKTOP = {"viewport": {"width": 1360, "height": 1000}}
PHONE = {  # an iPhone 12-14 sized screen: touch, 3 device pixels per CSS pixel
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"


def watch(page, expect_statuses: tuple[int, ...] = ()) -> list[str]:
    """Script errors and console errors of the page, collected as they happen; the browser's
    own console line for a response of an expected status is not one."""
    problems: list[str] = []
    expected = tuple(
        f"the server responded with a status of {status} " for status in expect_statuses
    )

    def console(message) -> None:
        if message.type == "error" and not any(e in message.text for e in expected):
            problems.append(f"console: {message.text}")

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", console)
    return problems


@pytest.fixture
def open_page(browser, server) -> Iterator:
    """open_page(url=None, ready=True, before=None, expect_statuses=(), **context options): a
    new browser context's page at `/` (`before(page)` runs first: routes, clocks); the test
    fails on any script or console error in any of them."""
    opened: list[tuple] = []

    def open_(url=None, ready=True, before=None, expect_statuses=(), **options):
        context = browser.new_context(**{**DESKTOP, **options})
        page = context.new_page()
        problems = watch(page, expect_statuses)
        opened.append((context, problems))
        if before is not None:
            before(page)  # routes, clocks: set before the page loads
        page.goto(url or f"{server.url}/")
        if ready:
            page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        return page

    yield open_
    for context, _ in opened:
        context.close()
    problems = [problem for _, found in opened for problem in found]
    assert not problems, problems


@pytest.fixture
def page(open_page):
    """The page at `/`, loaded and ready; fails the test on any script error or console error."""
    return open_page()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core, the accessibility engine, installed by scripts/test (npm ci in tests/web)."""
    if not AXE.exists():
        from tests.conftest import skip_or_fail

        skip_or_fail(f"no axe-core at {AXE} (npm ci --prefix tests/web; scripts/test does it)")
    return AXE.read_text()
