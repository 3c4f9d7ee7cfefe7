"""Runs inference off the event loop only when it is worth a thread.

A hop to the thread pool costs a few hundred microseconds of scheduling; encoding or decoding
a few 28x28 images costs less than that. Larger batches still leave the event loop, so they
cannot stall other requests. (Decoding uploads always leaves it: a small compressed file can
hold a large image.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

INLINE_VALUES = 16_384  # array values (about 20 MNIST images) computed on the event loop

P = ParamSpec("P")
R = TypeVar("R")


async def run_inference(values: int, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """func(*args, **kwargs), inline when it handles few `values` (pixels in or out)."""
    if values <= INLINE_VALUES:
        return func(*args, **kwargs)
    return await run_in_threadpool(func, *args, **kwargs)
