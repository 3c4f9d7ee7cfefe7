"""The app in the test process, with no socket: for the tests of what the routes answer.

The app runs on an event loop of its own thread, lifespan and all (models loaded, runners
started), as under a server; requests reach it through `httpx.ASGITransport` from an ordinary
synchronous `httpx.Client`. What needs a real socket (slow clients, the drain, workers, reloads
by signal, the benchmarks, clients that speak HTTP themselves) keeps a server process
(tests/service/conftest.py: start_server).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from service.app import create_app
from service.core.settings import Settings

T = TypeVar("T")


class InProcessApp:
    def __init__(self, settings: Settings, timeout: float = 90) -> None:
        self.app = create_app(settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="app", daemon=True)
        self.thread.start()
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.run(self.lifespan.__aenter__())
        plane = self.app.state.latentserve
        deadline = time.monotonic() + timeout
        while plane.registry is None and plane.load_error is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the models did not load in {timeout} s")
            time.sleep(0.02)
        # As a server answers: an error the app raised is its 500, not an exception here.
        self.transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            transport=_Bridge(self), base_url="http://127.0.0.1", timeout=30, **kwargs
        )

    def close(self) -> None:
        self.run(self.lifespan.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


class _Bridge(httpx.BaseTransport):
    """A synchronous transport that hands each request to the app's loop."""

    def __init__(self, app: InProcessApp) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body whole, so that the app's loop can stream it

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self.app.transport.handle_async_request(request)
            return response.status_code, response.headers.raw, await response.aread()

        status, headers, body = self.app.run(send())
        return httpx.Response(status, headers=headers, content=body, request=request)
