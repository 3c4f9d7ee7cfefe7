"""Graceful drain on SIGTERM, on a real server (one process and two workers) under concurrent
load: readiness turns 503 first, every request sent is answered, keep-alive clients are told
`Connection: close` instead of being cut, and the process exits within its grace period."""

from __future__ import annotations

import signal
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.service.conftest import Server, shipped_models_dir, start_server, stop_server
from tests.service.helpers import png, random_digit

pytestmark = pytest.mark.slow

CLIENTS = 16
DRAIN_DELAY = 2.0  # long enough for a readiness probe on a busy machine to see the 503
BODY = png(random_digit(3))


@dataclass
class Load:
    """Clients posting /encode in a loop on keep-alive connections until the server is gone."""

    url: str
    answered: int = 0
    refused: int = 0  # could not connect: never sent
    lost: list[str] = field(default_factory=list)  # sent, then no answer
    statuses: dict[int, int] = field(default_factory=dict)
    told_to_close: int = 0
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not stop.is_set():
                with self.lock:
                    self.in_flight += 1
                try:
                    response = http.post(
                        "/encode?model=mnist-vae",
                        content=BODY,
                        headers={"content-type": "image/png"},
                    )
                except httpx.ConnectError:
                    with self.lock:
                        self.refused += 1
                    return
                except httpx.HTTPError as error:
                    with self.lock:
                        self.lost.append(repr(error))
                    continue
                finally:
                    with self.lock:
                        self.in_flight -= 1
                with self.lock:
                    self.answered += 1
                    self.statuses[response.status_code] = (
                        self.statuses.get(response.status_code, 0) + 1
                    )
                    self.told_to_close += response.headers.get("connection") == "close"
                    if response.status_code != 200:
                        self.lost.append(f"{response.status_code} {response.text[:200]}")


def readiness(url: str) -> int | str:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code
    except httpx.ConnectError:
        return "refused"


def terminate_under_load(server: Server) -> tuple[Load, int, float, list]:
    load = Load(server.url)
    stop = threading.Event()
    threads = [threading.Thread(target=load.client, args=(stop,)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 15
    while load.answered < 4 * CLIENTS and time.monotonic() < deadline:
        time.sleep(0.05)  # every client under way, however busy the machine
    with load.lock:
        in_flight = load.in_flight
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    probes = [readiness(server.url)]
    while probes[-1] == 200 and len(probes) < 300:  # until the signal has reached every process
        time.sleep(0.01)
        probes.append(readiness(server.url))
    server.process.wait(timeout=30)
    exit_seconds = time.monotonic() - signalled
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return load, in_flight, exit_seconds, probes


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_under_load_answers_every_request_sent(tmp_path, workers):
    server = start_server(
        shipped_models_dir(),
        tmp_path / "server.log",
        workers=workers,
        drain_delay=str(DRAIN_DELAY),
        shutdown_grace="15",
        queue_deadline_ms="30000",  # a starved CPU must not shed: this test is about the drain
    )
    try:
        load, in_flight, exit_seconds, probes = terminate_under_load(server)
    finally:
        stop_server(server)
    print(
        f"\ndrain, {workers} worker(s): {in_flight} requests in flight at SIGTERM, "
        f"{load.answered} answered, {len(load.lost)} lost, exit {exit_seconds:.2f} s"
    )
    assert load.lost == [], load.lost[:3]
    assert load.statuses == {200: load.answered}
    assert load.refused == CLIENTS  # each client stopped only when the listener had gone
    assert probes[-1] == 503  # readiness first; the listener stays open for drain_delay
    assert load.told_to_close > 0  # keep-alive connections were closed by the server, not cut
    assert DRAIN_DELAY <= exit_seconds < 15
    log = server.log.read_text()
    assert "Traceback" not in log and "drained in" in log


def test_an_idle_keep_alive_connection_is_answered_not_cut(fixture_models, tmp_path):
    server = start_server(fixture_models, tmp_path / "server.log", keep_alive_timeout="5")
    try:
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/models").headers.get("connection") != "close"
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the listener is closed now; this connection is idle
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{server.url}/healthz")
            again = http.get("/models")  # on the kept connection
            assert again.status_code == 200
            assert again.headers["connection"] == "close"
        server.process.wait(timeout=10)
    finally:
        stop_server(server)


def test_the_process_exits_within_its_grace_period(fixture_models, tmp_path):
    server = start_server(
        fixture_models, tmp_path / "server.log", shutdown_grace="2", body_timeout="60"
    )
    host, port = server.url.removeprefix("http://").split(":")
    stalled = socket.create_connection((host, int(port)))
    try:
        # A request whose body never ends keeps its connection busy past the grace period.
        stalled.sendall(
            b"POST /encode HTTP/1.1\r\nHost: x\r\ncontent-type: image/png\r\n"
            b"content-length: 1000\r\n\r\n" + BODY[:100]
        )
        time.sleep(0.3)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=10)
        exit_seconds = time.monotonic() - signalled
        stalled.settimeout(5)
        assert stalled.recv(1000) == b""  # closed by the server
    finally:
        stalled.close()
        stop_server(server)
    assert 1.8 <= exit_seconds < 4
    assert "grace period over" in server.log.read_text()
