"""`--workers N`: N server processes on one listening socket, and a supervisor over them.

The supervisor binds the socket, starts the workers (spawned, each its own
service.runtime.server with its own models) and then only relays signals: SIGTERM/SIGINT to
every worker (each drains as one process would), SIGHUP to every worker (each reloads its
models). A worker that dies outside a shutdown is replaced. With several workers, Prometheus
metrics are kept in multiprocess mode (files in a temporary folder), so /metrics on any worker
shows the sums over all of them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.process import BaseProcess

from prometheus_client import multiprocess
from uvicorn.config import STARTUP_FAILURE

from service.core.metrics import METRICS_DIR_ENV
from service.core.settings import Settings, get_settings

log = logging.getLogger("latentserve.workers")

RELAYED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run_worker(sockets: list[socket.socket]) -> None:
    from service.runtime.server import serve  # in the spawned process

    os.setpgrp()  # a terminal's Ctrl-C reaches the supervisor only, which relays it once
    serve(get_settings(), sockets)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[BaseProcess] = []
        self.stopping = False
        self.sock: socket.socket | None = None
        self.failed = False

    def start_worker(self, sock: socket.socket) -> BaseProcess:
        worker = self.context.Process(target=run_worker, args=([sock],), name="latentserve-worker")
        worker.start()
        log.info("started worker %d", worker.pid)
        return worker

    def run(self) -> int:
        """Serves until every worker has exited; 1 when a worker could not start."""
        metrics_dir = tempfile.mkdtemp(prefix="latentserve-metrics-")
        os.environ[METRICS_DIR_ENV] = metrics_dir  # inherited by the spawned workers
        os.environ["LATENTSERVE_WORKERS"] = str(self.settings.workers)
        from service.runtime.server import configure

        self.sock = sock = configure(self.settings).bind_socket()
        for sig in RELAYED:
            signal.signal(sig, lambda sig, _: self.relay(sig))
        log.info("%d workers on http://%s:%d", self.settings.workers, *sock.getsockname()[:2])
        try:
            self.workers = [self.start_worker(sock) for _ in range(self.settings.workers)]
            while any(worker.is_alive() for worker in self.workers):
                self.replace_dead(sock)
                time.sleep(0.1)
        finally:
            self.sock.close()
            for worker in self.workers:
                worker.join(timeout=self.settings.shutdown_grace + 5)
                if worker.is_alive():
                    worker.kill()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 1 if self.failed else 0

    def relay(self, sig: int) -> None:
        """Called as the signal handler, so that workers hear of a SIGTERM at once."""
        if sig in (signal.SIGTERM, signal.SIGINT) and not self.stopping:
            self.stopping = True
            self.sock.close()  # the workers hold the listener open while they drain
        log.info("relaying %s to %d worker(s)", signal.Signals(sig).name, len(self.workers))
        for worker in self.workers:
            if worker.exitcode is None:
                os.kill(worker.pid, sig)

    def replace_dead(self, sock: socket.socket) -> None:
        if self.stopping:
            return
        for index, worker in enumerate(self.workers):
            if worker.exitcode is None:
                continue
            multiprocess.mark_process_dead(worker.pid)
            if worker.exitcode == STARTUP_FAILURE:
                log.error("worker %d could not start; stopping", worker.pid)
                self.failed = True
                self.relay(signal.SIGTERM)
                return
            log.error("worker %d exited with %s; starting another", worker.pid, worker.exitcode)
            self.workers[index] = self.start_worker(sock)
