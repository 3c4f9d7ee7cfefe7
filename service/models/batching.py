"""One runner per (model, graph): a bounded queue, dynamic batching and load shedding.

Every front end (the domain routes, the V2 protocol) runs a graph through `GraphRunner.run`.
Requests that arrive while the graph is busy wait in the queue; when the graph is free, the
runner takes as many waiting requests as fit in `max_batch` images, concatenates their inputs
along the batch axis, runs the graph once in its own thread and hands each request its slice of
the outputs. Under load the batches grow by themselves; an idle runner answers a lone request at
once (unless `max_wait` asks it to linger for company).

Shedding follows Triton's queue policy: a request is refused with 503 (`Overloaded`, with
`Retry-After`) when the queue already holds `max_queue` requests or more work than the graph
can do within `deadline` (by its measured time per image), and dropped with 503 when it has
waited longer than `deadline` by the time a batch would take it, so the latency of what is
answered stays bounded however many clients there are.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from service.core import tracing
from service.core.errors import Overloaded
from service.core.settings import Settings

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class BatchPolicy:
    max_batch: int = 64  # images per graph call; a larger request runs alone, unsplit
    max_wait: float = 0.0  # seconds an idle runner lingers to let a batch fill
    max_queue: int = 256  # requests waiting; one more is refused
    deadline: float = 0.5  # seconds a request may wait before it is shed
    # A batch expected to take less than this runs on the event loop: handing it to the graph's
    # thread and back would cost more. Longer batches leave the loop, lest they stall it.
    inline_seconds: float = 0.0002

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchPolicy:
        return cls(
            max_batch=settings.batch_max_size,
            max_wait=settings.batch_max_wait_ms / 1000,
            max_queue=settings.queue_max_requests,
            deadline=settings.queue_deadline_ms / 1000,
        )


class RunnerObserver:
    """What a runner reports; the metrics implement it (tests may pass None)."""

    def batch(self, images: int, seconds: float) -> None: ...

    def waited(self, seconds: float) -> None: ...

    def shed(self, reason: str) -> None: ...


@dataclass(eq=False)
class _Request:
    inputs: Arrays
    count: int
    future: asyncio.Future[Arrays]
    enqueued: float
    trace: tracing.RequestTrace | None = None  # only while tracing (service.core.tracing)
    enqueued_ns: int = 0


class GraphRunner:
    def __init__(
        self,
        name: str,
        run_graph: Callable[[Arrays], Arrays],
        policy: BatchPolicy,
        observer: RunnerObserver | None = None,
    ) -> None:
        self.name = name  # "<model>/<graph>", for messages
        self._run_graph = run_graph
        self.policy = policy
        self._observer = observer or RunnerObserver()
        self._queue: deque[_Request] = deque()
        self._waiting_images = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"graph-{name}")
        self._seconds_per_image: float | None = None  # running average; None until measured

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch being computed)."""
        return len(self._queue)

    async def run(self, inputs: Arrays) -> Arrays:
        """The graph's outputs for these inputs (all with the same leading batch size)."""
        if len(self._queue) >= self.policy.max_queue:
            self._observer.shed("queue_full")
            raise Overloaded(
                f"{self.name} has {len(self._queue)} requests waiting, its limit; retry shortly",
                retry_after=self._retry_after(),
            )
        if self._expected_wait() > self.policy.deadline:
            self._observer.shed("deadline")
            raise Overloaded(
                f"{self.name} has {self._waiting_images} images waiting, about "
                f"{self._expected_wait() * 1000:.0f} ms of work, over its queue deadline of "
                f"{self.policy.deadline * 1000:.0f} ms; retry shortly",
                retry_after=self._retry_after(),
            )
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._start(loop)
        count = len(next(iter(inputs.values())))
        request = _Request(inputs, count, loop.create_future(), time.perf_counter())
        if tracing.ENABLED and (trace := tracing.current()) is not None:
            request.trace, request.enqueued_ns = trace, time.time_ns()
        self._queue.append(request)
        self._waiting_images += count
        self._wakeup.set()
        return await request.future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._serve(), name=f"runner {self.name}")

    async def close(self) -> None:
        """Answer what is queued, then stop the batching task and the graph's thread."""
        while self._queue:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._thread.shutdown(wait=True)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.policy.max_wait > 0 and self._waiting_images < self.policy.max_batch:
                await asyncio.sleep(self.policy.max_wait)
            batch = self._take(time.perf_counter())  # uvloop's clock ticks in ms
            if batch:
                await self._execute(batch, loop)

    def _take(self, now: float) -> list[_Request]:
        """The oldest waiting requests that fit in one batch; shed those past the deadline."""
        batch: list[_Request] = []
        images = 0
        while self._queue:
            request = self._queue[0]
            if batch and images + request.count > self.policy.max_batch:
                break
            self._queue.popleft()
            self._waiting_images -= request.count
            if request.future.done():  # the client went away
                continue
            waited = now - request.enqueued
            self._observer.waited(waited)
            if waited > self.policy.deadline:
                self._shed_late(request, waited)
                continue
            batch.append(request)
            images += request.count
        return batch

    def _shed_late(self, request: _Request, waited: float) -> None:
        self._observer.shed("deadline")
        request.future.set_exception(
            Overloaded(
                f"{self.name} could not start this request within its queue deadline of "
                f"{self.policy.deadline * 1000:.0f} ms (it waited {waited * 1000:.0f} ms); "
                "retry shortly",
                retry_after=self._retry_after(),
            )
        )

    def _retry_after(self) -> int:
        return max(1, math.ceil(self.policy.deadline))

    async def _execute(self, batch: list[_Request], loop: asyncio.AbstractEventLoop) -> None:
        images = sum(request.count for request in batch)
        span = tracing.batch_span(self.name, batch, images) if tracing.ENABLED else None
        try:
            inputs = _concatenate([request.inputs for request in batch])
            if self._expected_seconds(images) <= self.policy.inline_seconds:
                outputs, seconds = self._timed_run(inputs)
            else:
                outputs, seconds = await loop.run_in_executor(self._thread, self._timed_run, inputs)
        except Exception as exc:
            if span is not None:
                tracing.end_batch(span, exc)
            if len(batch) == 1:
                _settle(batch[0].future, exception=exc)
            else:  # find the one that fails; the others must not fail with it
                for request in batch:
                    await self._execute([request], loop)
            return
        if span is not None:
            tracing.end_batch(span)
        self._observer.batch(images, seconds)
        self._learn(seconds / images)
        offset = 0
        for request in batch:
            end = offset + request.count
            _settle(request.future, {name: array[offset:end] for name, array in outputs.items()})
            offset = end

    def _timed_run(self, inputs: Arrays) -> tuple[Arrays, float]:
        start = time.perf_counter()
        outputs = self._run_graph(inputs)
        return outputs, time.perf_counter() - start

    def _expected_wait(self) -> float:
        """Graph time of the images queued now; 0 until the graph has been timed."""
        return self._waiting_images * (self._seconds_per_image or 0.0)

    def _expected_seconds(self, images: int) -> float:
        if self._seconds_per_image is None:
            return math.inf  # not measured yet: the first call takes the thread
        return images * self._seconds_per_image

    def _learn(self, seconds_per_image: float) -> None:
        known = self._seconds_per_image
        self._seconds_per_image = (
            seconds_per_image if known is None else 0.9 * known + 0.1 * seconds_per_image
        )


def _concatenate(parts: list[Arrays]) -> Arrays:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _settle(
    future: asyncio.Future, result: Arrays | None = None, exception: Exception | None = None
) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
