"""Model updates without downtime: on SIGHUP the model folder is scanned again and the registry
is swapped while requests continue.

The new registry is built in a thread (unchanged folders keep their loaded models; a broken
new version keeps the previous one, listed in `failed`), then replaces the old one in one
assignment. A request that already holds a model finishes on it; a model that was swapped out
stops its runners once the calls inside them are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from service.models.dataplane import DataPlane
from service.models.registry import ModelRegistry

log = logging.getLogger("latentserve.reload")


class Reloader:
    def __init__(self, state: DataPlane) -> None:
        self.state = state
        self.lock = asyncio.Lock()
        self.again = False  # a SIGHUP during a reload: one more pass after it
        self.tasks: set[asyncio.Task] = set()

    def install(self) -> None:
        """Reload on SIGHUP (where the platform has it and this is the main thread)."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request)
        except (AttributeError, NotImplementedError, RuntimeError, ValueError):
            log.warning("SIGHUP cannot be handled here; model reloads are off")

    def uninstall(self) -> None:
        with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    def request(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reload(self) -> ModelRegistry | None:
        if self.lock.locked():
            self.again = True
            return None
        async with self.lock:
            registry = await self._reload_once()
            while self.again:
                self.again = False
                registry = await self._reload_once()
        return registry

    async def _reload_once(self) -> ModelRegistry | None:
        state = self.state
        old = state.registry
        if old is None:
            log.warning("reload asked while the models are still loading: ignored")
            return None
        start = time.perf_counter()
        new = await asyncio.to_thread(state.read_models, old)
        if old.models and not new.models:
            log.error("reload refused: no model could be loaded; the previous ones serve on")
            return None
        state.registry = new  # the swap
        kept = {id(model) for model in new.models.values()}
        retired = [model for model in old.models.values() if id(model) not in kept]
        loaded = [name for name, model in new.models.items() if model not in old.models.values()]
        log.info(
            "reloaded in %.3f s: %d model(s) loaded (%s), %d retired, %d refused",
            time.perf_counter() - start,
            len(loaded),
            ", ".join(loaded) or "none",
            len(retired),
            len(new.failed),
        )
        await asyncio.gather(*(model.close() for model in retired))
        return new
