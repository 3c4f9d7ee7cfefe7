"""/docs and /redoc work without internet: every file they load comes from the service itself.

Headless Chromium with every request off loopback refused (and recorded): the pages render,
list every operation of the document, and Swagger UI's "Try it out" on /encode answers 200.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.conftest import watch

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def offline(browser, server):
    """offline(path): a page at `path` of the server, any request elsewhere refused."""
    opened = []

    def open_(path: str):
        context = browser.new_context(viewport={"width": 1360, "height": 1000})
        page = context.new_page()
        problems = watch(page)
        elsewhere: list[str] = []

        def route(request_route) -> None:
            url = request_route.request.url
            if urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith("data:"):
                request_route.continue_()
            else:
                elsewhere.append(url)
                request_route.abort()

        page.route("**/*", route)
        opened.append((context, problems, elsewhere))
        page.goto(f"{server.url}{path}")
        return page

    yield open_
    for context, problems, elsewhere in opened:
        context.close()
        assert not elsewhere, f"the docs reached off the server: {elsewhere}"
        assert not problems, problems


def operations(server) -> dict[tuple[str, str], dict]:
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_swagger_ui_renders_every_operation_offline(offline, server):
    page = offline("/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
    shown = page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(b => [
            b.querySelector('.opblock-summary-method').textContent.trim(),
            b.querySelector('.opblock-summary-path').getAttribute('data-path')])""",
    )
    assert {(method, path) for method, path in shown} == set(operations(server))


def test_try_it_out_on_encode_answers_200(offline):
    page = offline("/docs")
    block = page.locator(".opblock-post").filter(
        has=page.locator('.opblock-summary-path[data-path="/encode"]')
    )
    block.locator(".opblock-summary").click(timeout=60_000)
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=60_000)
    assert status.inner_text().strip().startswith("200"), block.inner_text()


def test_redoc_renders_every_operation_offline(offline, server):
    page = offline("/redoc")
    page.wait_for_selector("[data-section-id]", timeout=60_000)
    sections = set(
        page.eval_on_selector_all(
            "[data-section-id]", "nodes => nodes.map(n => n.getAttribute('data-section-id'))"
        )
    )
    missing = [
        (method, path)
        for (method, path), operation in operations(server).items()
        if not any(s.endswith(f"operation/{operation['operationId']}") for s in sections)
    ]
    assert not missing, missing
