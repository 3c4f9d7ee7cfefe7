"""`latentserve-serve` answers a mistake in one sentence: exit 2 for the command line and the
settings, 1 for a failure, a traceback only with --debug; --host and --port are its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from deploy.ports import free_port
from tests.conftest import ROOT


def serve(*args: str, timeout: float = 60, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTSERVE_")}
    env |= {f"LATENTSERVE_{key.upper()}": value for key, value in settings.items()}
    env.setdefault("LATENTSERVE_GRPC_PORT", "0")
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert lines and lines[-1].startswith("latentserve-serve: error: "), stderr
    return lines[-1]


@pytest.mark.parametrize(
    ("args", "settings", "words"),
    [
        (["--port", "abc"], {}, ["--port", "port number"]),
        (["--port", "70000"], {}, ["0..65535"]),
        (["--workers", "0"], {}, ["at least 1"]),
        (["--no-such-flag"], {}, ["unrecognized arguments"]),
        ([], {"api_keys": "secret123"}, ["API key number 1", "16 characters"]),
        ([], {"port": "eighty"}, ["LATENTSERVE_PORT", "valid integer"]),
    ],
)
def test_usage_and_settings_errors_exit_2_in_one_sentence(args, settings, words, fixture_models):
    result = serve(*args, model_dir=str(fixture_models), **settings)
    assert result.returncode == 2, result.stderr
    line = one_sentence(result.stderr)
    for word in words:
        assert word in line, line
    assert "secret123" not in result.stderr  # a key is never echoed


def test_debug_adds_the_traceback(fixture_models):
    result = serve("--debug", model_dir=str(fixture_models), api_keys="secret123")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "KeyConfigError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("latentserve-serve: error: ")


def test_a_port_in_use_exits_1_in_one_sentence(fixture_models):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--port", str(port), model_dir=str(fixture_models))
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in one_sentence(result.stderr)


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_model_directory_without_models_is_said_at_the_start(state, tmp_path):
    model_dir = tmp_path / "models"
    if state == "empty":
        model_dir.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "LATENTSERVE_MODEL_DIR": str(model_dir), "LATENTSERVE_GRPC_PORT": "0"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stderr.readline()
        assert first.startswith("latentserve-serve: warning: the model directory "), first
        assert str(model_dir) in first and "/readyz answers 503" in first
        ready = wait_for(f"http://127.0.0.1:{port}/readyz", process)
        assert ready.status_code == 503
        assert any(str(model_dir) in f["reason"] for f in ready.json()["failed"])
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_host_and_port_flags_choose_where_it_listens(fixture_models):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={
            **os.environ,
            "LATENTSERVE_MODEL_DIR": str(fixture_models),
            "LATENTSERVE_PORT": "1",
            "LATENTSERVE_GRPC_PORT": "0",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", process).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_openapi_check_passes_on_the_committed_document():
    assert serve("openapi", "--check").returncode == 0


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url} in {timeout} s")
