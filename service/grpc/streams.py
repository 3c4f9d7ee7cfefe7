"""A ModelStreamInfer call's requests, answered concurrently as they finish (service/grpc/server.py
reads and writes the stream; this module only schedules)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class Stream:
    """The requests of one ModelStreamInfer call, read by a task of their own: each is answered
    by a task too, so that a stream's requests run (and batch) together, and the answers come
    out as they finish."""

    def __init__(self, requests, answer: Callable[[Any], Awaitable[Any]], limit: int) -> None:
        self._answer = answer
        self._answers: asyncio.Queue = asyncio.Queue()
        # At most `limit` requests read and not yet answered: then the stream reads no more
        # until one is, and gRPC's flow control holds a client that sends without reading.
        self._room = asyncio.Semaphore(limit)
        self._running: set[asyncio.Task] = set()
        self._unanswered = 0
        self._reading = True
        self._reader = asyncio.create_task(self._read(requests))
        self._reader.add_done_callback(lambda _: self._answers.put_nowait(None))

    @property
    def stopped(self) -> bool:
        """Whether reading was stopped (the server is draining) rather than ended by the client."""
        return self._reader.cancelled()

    async def _read(self, requests) -> None:
        incoming = aiter(requests)
        while True:
            await self._room.acquire()
            try:
                request = await anext(incoming)
            except StopAsyncIteration:
                return
            self._unanswered += 1
            task = asyncio.create_task(self._answered(request))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _answered(self, request) -> None:
        self._answers.put_nowait(await self._answer(request))

    async def next_answer(self):
        """The next answer done; None once the requests have ended and all are answered."""
        while self._reading or self._unanswered:
            answer = await self._answers.get()
            if answer is None:  # the reader ended
                self._reading = False
                if not self.stopped and (error := self._reader.exception()) is not None:
                    raise error
                continue
            self._unanswered -= 1
            self._room.release()
            return answer
        return None

    def stop_reading(self) -> None:
        self._reader.cancel()

    def cancel(self) -> None:
        self._reader.cancel()
        for task in self._running:
            task.cancel()
