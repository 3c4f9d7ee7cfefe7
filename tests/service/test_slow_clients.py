"""Slow and broken clients, driven with raw sockets against a real server: each is closed by
its timeout or limit, the server answers other clients promptly meanwhile, and memory stays
flat."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.slow

TIMEOUT = 3.0  # header and body timeouts of the server under test
PROMPT = 2.0  # a normal request meanwhile is answered well before any bad one is cut
SEND_TIMEOUT = 2.0
MAX_CONNECTIONS = 40
HEAD = b"POST /decode HTTP/1.1\r\nHost: test\r\ncontent-type: application/json\r\n"
LATENT = b'{"latents": [[0.0, 0.0, 0.0, 0.0]]}'


@pytest.fixture(scope="module")
def server(fixture_models: Path, tmp_path_factory) -> Iterator[Server]:
    server = start_server(
        fixture_models,
        tmp_path_factory.mktemp("slow") / "server.log",
        default_model="tiny-vae",
        header_timeout=str(TIMEOUT),
        body_timeout=str(TIMEOUT),
        send_timeout=str(SEND_TIMEOUT),
        keep_alive_timeout="1",
        max_connections=str(MAX_CONNECTIONS),
    )
    yield server
    stop_server(server)


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and when it closed (seconds from now)."""
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received, time.monotonic() - start


def rss_kib(server: Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


def served_promptly(server: Server) -> float:
    """Seconds a normal client (on its own connection, already open) waits for a decode."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        start = time.monotonic()
        response = http.post(
            "/decode", content=LATENT, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200
        return time.monotonic() - start


def assert_408(received: bytes, words: str) -> None:
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), received[:200]
    assert b"application/problem+json" in head and b"connection: close" in head.lower()
    assert words.encode() in body


def trickle(sock: socket.socket, data: bytes, every: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.is_set():
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return
        time.sleep(every)


def trickle_until_closed(server, sock: socket.socket, data: bytes, every: float):
    """Trickle `data` on `sock` while checking others are served; what came back and when."""
    stop = threading.Event()
    writer = threading.Thread(target=trickle, args=(sock, data, every, stop))
    writer.start()
    try:
        waits = [served_promptly(server) for _ in range(3)]
        received, closed_after = read_until_closed(sock)
    finally:
        stop.set()
        writer.join()
        sock.close()
    return received, closed_after, waits


def test_trickled_headers_are_cut_at_the_header_timeout(server):
    sock = connect(server)
    received, closed_after, waits = trickle_until_closed(server, sock, HEAD * 20, 0.1)
    assert_408(received, "request head did not arrive in time")
    assert closed_after < TIMEOUT + 1.0
    assert max(waits) < PROMPT


def test_a_trickled_body_is_cut_by_the_minimum_rate(server):
    sock = connect(server)
    sock.sendall(HEAD + b"content-length: 100000\r\n\r\n")
    received, closed_after, waits = trickle_until_closed(server, sock, b"x" * 1000, 0.2)
    assert_408(received, "request body stopped arriving")
    assert closed_after < TIMEOUT + 1.0
    assert max(waits) < PROMPT


def test_a_body_shorter_than_its_content_length_is_cut_at_the_body_timeout(server):
    sock = connect(server)
    sock.sendall(HEAD + f"content-length: {len(LATENT) + 10}\r\n\r\n".encode() + LATENT)
    start = time.monotonic()
    received, _ = read_until_closed(sock)
    sock.close()
    assert_408(received, "request body stopped arriving")
    assert TIMEOUT - 0.1 < time.monotonic() - start < TIMEOUT + 1.0


def test_a_connection_that_sends_nothing_is_closed(server):
    sock = connect(server)
    received, closed_after = read_until_closed(sock)
    sock.close()
    assert_408(received, "request head did not arrive in time")
    assert closed_after < TIMEOUT + 1.0


def test_clients_that_disconnect_mid_request_leave_nothing_behind(server):
    def hang_up(partial: bytes) -> None:
        sock = connect(server)
        sock.sendall(partial)
        sock.close()

    partials = [
        HEAD,  # in the head
        HEAD + b"content-length: 1000\r\n\r\n" + LATENT[:10],  # in the body
        HEAD + f"content-length: {len(LATENT)}\r\n\r\n".encode() + LATENT,  # before reading
    ]
    hang_up(partials[1])
    before = rss_kib(server)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(hang_up, partials * 100))
    assert served_promptly(server) < PROMPT
    time.sleep(0.5)
    assert rss_kib(server) - before < 8 * 1024  # KiB: 300 abandoned requests leave no trace
    log = server.log.read_text()
    assert "Traceback" not in log and "internal error" not in log


def test_a_client_that_never_reads_its_response_is_aborted(server):
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window
    sock.connect((host, int(port)))
    request = (
        b"GET /sample?n=256&seed=1 HTTP/1.1\r\nHost: test\r\naccept: application/x-npy\r\n\r\n"
    )
    sock.sendall(request * 30)  # pipelined: ~24 MB of answers it will not read
    time.sleep(SEND_TIMEOUT + 1.5)
    waits = [served_promptly(server) for _ in range(3)]
    received, closed_after = read_until_closed(sock)
    sock.close()
    assert len(received) < 30 * 256 * 28 * 28 * 4 / 4  # cut well before the end
    assert closed_after < 3.0, closed_after  # already closed: the buffers' rest, then the end
    assert max(waits) < PROMPT, waits
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]


def test_connections_beyond_the_limit_get_503_until_some_close(server):
    idle = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        response = httpx.post(
            f"{server.url}/decode", content=LATENT, headers={"content-type": "application/json"}
        )
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        assert f"limit of {MAX_CONNECTIONS} connections" in response.json()["detail"]
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    assert served_promptly(server) < PROMPT
