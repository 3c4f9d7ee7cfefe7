"""`latentserve-serve --workers N`: several processes on one port, whose /metrics add up and
which all reload on SIGHUP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT
from tests.service.conftest import Server, free_port, stop_server, wait_ready

pytestmark = pytest.mark.slow


def encode_count(metrics: str) -> float:
    pattern = r'latentserve_requests_total\{[^}]*route="/decode"[^}]*\} ([0-9.e+]+)'
    return sum(float(value) for value in re.findall(pattern, metrics))


def test_two_workers_share_the_port_and_their_metrics_add_up(fixture_models, tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "LATENTSERVE_MODEL_DIR": str(fixture_models),
        "LATENTSERVE_PORT": str(port),
        "LATENTSERVE_GRPC_PORT": str(free_port(exclude=port)),  # the workers share it too
        "LATENTSERVE_DEFAULT_MODEL": "tiny-vae",
    }
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=handle,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    wait_ready(server)
    try:
        sent = 40
        for _ in range(sent):  # a new connection each: the kernel spreads them over the workers
            response = httpx.post(f"{server.url}/decode", json={"latents": [[0.0] * 4]})
            assert response.status_code == 200
        scrapes = [encode_count(httpx.get(f"{server.url}/metrics").text) for _ in range(6)]
        process.send_signal(signal.SIGHUP)  # relayed: every worker reloads its models
        deadline = time.monotonic() + 30
        while log.read_text().count("reloaded in") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        stop_server(server)
    text = log.read_text()
    pids = set(re.findall(r"Started server process \[(\d+)\]", text))
    assert len(pids) == 2, text[-2000:]
    assert scrapes == [sent] * 6  # whichever worker answers the scrape, it tells the sum
    assert text.count("reloaded in") == 2
    assert text.count("drained in") == 2
