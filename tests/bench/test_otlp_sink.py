"""bench/otlp_sink.py: answers OTLP/HTTP exports with 200 and counts them when it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.service.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_sink_accepts_exports_and_counts_them():
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "bench/otlp_sink.py", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/traces"
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.post(url, content=b"\x0a\x00", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the sink did not start"
                time.sleep(0.05)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-protobuf"
    finally:
        sink.send_signal(signal.SIGTERM)
        out, _ = sink.communicate(timeout=10)
    assert "1 export requests, 2 bytes" in out
