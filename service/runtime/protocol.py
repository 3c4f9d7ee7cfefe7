"""The HTTP protocol under uvicorn with the limits a public server needs against slow and broken
clients, and the keep-alive handling of a graceful drain.

uvicorn bounds only the idle time between keep-alive requests. This subclass of its httptools
protocol adds, per connection, one timer for whatever the server is waiting on:

- the request head: a client must send its complete headers within `header_timeout` of
  connecting or of its request's first byte (slowloris), else 408 and the connection closes;
- the body: at most `body_timeout` between two body chunks (a body shorter than its
  Content-Length), and past `body_timeout` at least `min_body_rate` bytes/s on average (a
  trickled body), else 408 and close; the route sees a disconnect;
- the response: a client that stops reading holds the write buffer at most `send_timeout`,
  then the connection is aborted;
- connections beyond `max_connections` get 503 problem+json for their request, and close.

While the server drains (service.runtime.server), every new response carries `Connection: close`, so
keep-alive clients move off at their next request instead of being cut.
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.asgi.problems import problem_response, raw_problem
from service.core.drain import Drain
from service.core.settings import Settings

# What this module and service.runtime.server use of uvicorn beyond its public Config and Server.
UVICORN_INTERNALS = {
    # HttpToolsProtocol: methods overridden (each calls uvicorn's own) and the constructor's
    # keyword arguments (service.runtime.server makes protocols for queued connections).
    "protocol methods": (
        "connection_made",
        "connection_lost",
        "_start_asgi_task",
        "on_message_begin",
        "on_headers_complete",
        "on_body",
        "on_message_complete",
        "pause_writing",
        "resume_writing",
        "shutdown",
    ),
    "protocol constructor": ("config", "server_state", "app_state", "_loop"),
    "protocol attributes": (
        "limit_concurrency",
        "connections",
        "app",
        "cycle",
        "transport",
        "loop",
    ),
    # RequestResponseCycle: fields read and written.
    "cycle attributes": (
        "response_complete",
        "response_started",
        "keep_alive",
        "disconnected",
        "message_event",
    ),
    # Server: what the drain calls and reads.
    "server methods": ("handle_exit", "shutdown", "_wait_tasks_to_complete"),
    "server attributes": ("server_state", "servers", "force_exit", "lifespan", "config"),
}

HEADER_TIMEOUT_RESPONSE = raw_problem(
    408, "the request head did not arrive in time; the connection is closed"
)
BODY_TIMEOUT_RESPONSE = raw_problem(
    408, "the request body stopped arriving; the connection is closed"
)


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read, write and connection limits (see the module)."""

    header_timeout: float = 10.0
    body_timeout: float = 10.0
    min_body_rate: float = 1024.0
    send_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def with_limits(cls, settings: Settings) -> type[Protocol]:
        """This protocol with the settings' limits, as a class for uvicorn's `http`."""
        limits = {
            "header_timeout": settings.header_timeout,
            "body_timeout": settings.body_timeout,
            "min_body_rate": settings.min_body_rate,
            "send_timeout": settings.send_timeout,
            "max_connections": settings.max_connections,
        }
        return type(cls.__name__, (cls,), limits)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None  # replaced by the problem+json limit below
        self._waiting: asyncio.TimerHandle | None = None  # head or body
        self._body_started = 0.0
        self._running = None  # the request cycle whose app runs now
        self._body_bytes = 0
        self._writing: asyncio.TimerHandle | None = None

    def _wait_for(self, seconds: float, on_timeout) -> None:
        self._stop_waiting()
        self._waiting = self.loop.call_later(seconds, on_timeout)

    def _stop_waiting(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for(self.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if self._writing is not None:
            self._writing.cancel()
        running = self._running
        if running is not None and not running.response_complete:
            # uvicorn tells only the newest cycle; with pipelined requests that is not the one
            # still writing, which would then write into the closed transport.
            running.disconnected = True
            running.message_event.set()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle, app) -> None:  # type: ignore[no-untyped-def]
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._wait_for(self.header_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        app = self.app
        if len(self.connections) > self.max_connections:
            self.app = self._too_many_connections
        try:
            super().on_headers_complete()
        finally:
            self.app = app
        self._wait_for(self.body_timeout, self._body_timed_out)
        self._body_started = self.loop.time()
        self._body_bytes = 0
        if Drain.active and self.cycle is not None:
            self.cycle.keep_alive = False  # the response says Connection: close

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_bytes += len(body)
        elapsed = self.loop.time() - self._body_started
        if elapsed > self.body_timeout and self._body_bytes < self.min_body_rate * elapsed:
            self._body_timed_out()
        else:
            self._wait_for(self.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop_waiting()

    async def _too_many_connections(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            503,
            f"the server has its limit of {self.max_connections} connections open; retry shortly",
            headers={"Retry-After": "1", "Connection": "close"},
        )
        await response(scope, receive, send)

    def _head_timed_out(self) -> None:
        self._waiting = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(HEADER_TIMEOUT_RESPONSE)
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._waiting = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_started:
            self.transport.write(BODY_TIMEOUT_RESPONSE)
        self.transport.close()  # the route, waiting on the body, is told of a disconnect

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._writing is None:
            self._writing = self.loop.call_later(self.send_timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._writing is not None:
            self._writing.cancel()
            self._writing = None

    def _send_timed_out(self) -> None:
        self._writing = None
        self.transport.abort()

    def shutdown(self) -> None:
        """Drain: a busy connection closes after its response; an idle one is left to its
        keep-alive timer, so a request it sends meanwhile is answered, not cut."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
