"""uvicorn run with a graceful drain: what `latentserve-serve` starts, in each worker.

On SIGTERM (or Ctrl-C) the order of events is:

1. /readyz answers 503 and every new response carries `Connection: close`;
2. after `drain_delay` seconds (time for a load balancer to notice) the listening socket closes;
3. requests already accepted are answered; busy keep-alive connections close after their
   response, idle ones at their next response or their keep-alive timeout, never mid-request;
4. at `shutdown_grace` seconds after the signal whatever is left is cancelled and closed, the
   models' runners stop, and the process exits.

A second Ctrl-C exits at once, as in uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from types import FrameType

import uvicorn

from service.core.drain import Drain
from service.core.logging import configure_logging
from service.core.settings import Settings
from service.runtime.protocol import Protocol

log = logging.getLogger("latentserve.server")


def configure(settings: Settings) -> uvicorn.Config:
    """The uvicorn config of this service: the app factory, and the protocol with its limits."""
    configure_logging(settings.log_level, settings.log_format)
    return uvicorn.Config(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # service.asgi.access writes it, with request and trace IDs
        http=Protocol.with_limits(settings),
        timeout_keep_alive=settings.keep_alive_timeout,
        timeout_graceful_shutdown=settings.shutdown_grace,
    )


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose shutdown drains instead of cutting keep-alive connections."""

    def __init__(self, config: uvicorn.Config, drain_delay: float, grace: float) -> None:
        super().__init__(config)
        self.drain_delay = drain_delay
        self.grace = grace
        self.signalled_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
            Drain.active = True
            log.info(
                "%s: draining; /readyz answers 503, the listener closes in %.1f s, exit within "
                "%.1f s",
                signal.Signals(sig).name,
                self.drain_delay,
                self.grace,
            )
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """The drain delay, then the listeners closed (their queued connections served), then
        uvicorn's own shutdown within what is left of the grace period."""
        started = self.signalled_at or time.monotonic()
        Drain.active = True
        await self._sleep_unless_forced(started + self.drain_delay - time.monotonic())
        queued = await self._stop_accepting(sockets or [])
        log.info(
            "listener closed; %d connection(s) (%d taken from its queue), %d request(s) in flight",
            len(self.server_state.connections),
            queued,
            len(self.server_state.tasks),
        )
        deadline = started + self.grace
        # Just before uvicorn cancels what is left, the connections still open are cut, so that
        # a cancelled request's 500 goes nowhere: its client sees the connection close.
        cut = asyncio.get_running_loop().call_later(
            max(0.0, deadline - time.monotonic() - 0.05), self._grace_over
        )
        self.config.timeout_graceful_shutdown = max(0.0, deadline - time.monotonic())
        try:
            # uvicorn's shutdown: each connection's shutdown() (Protocol's: a busy one closes
            # after its response), a wait for them within the grace, the lifespan's shutdown.
            await super().shutdown(sockets=None)
        finally:
            cut.cancel()
        log.info("drained in %.2f s", time.monotonic() - started)

    def _grace_over(self) -> None:
        state = self.server_state
        if not state.tasks and not state.connections:
            return
        log.error(
            "grace period over: cancelling %d request(s), closing %d connection(s)",
            len(state.tasks),
            len(state.connections),
        )
        for connection in list(state.connections):
            connection.transport.abort()

    async def _stop_accepting(self, sockets: list[socket.socket]) -> int:
        """Closes the listeners, serving the connections already in their accept queues: the
        kernel resets those when a listener closes, and their clients may have sent requests."""
        queued = []
        for sock in sockets:
            while True:
                try:
                    queued.append(sock.accept()[0])
                except OSError:  # BlockingIOError: the queue is empty
                    break
        for server in self.servers:  # no await since the loop above: nothing new got in
            server.close()
        for sock in sockets:
            sock.close()
        loop = asyncio.get_running_loop()
        for conn in queued:
            conn.setblocking(False)
            await loop.connect_accepted_socket(lambda: self._protocol(loop), conn)
        return len(queued)

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> asyncio.Protocol:
        """What uvicorn's startup makes for each accepted connection."""
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=loop,
        )

    async def _sleep_unless_forced(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def serve(settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    """One server process (a worker when `sockets` are given), until it has drained."""
    config = configure(settings)
    if sockets is None:
        sockets = [config.bind_socket()]  # held here, so that the drain can empty its queue
    DrainingServer(config, settings.drain_delay, settings.shutdown_grace).run(sockets)
