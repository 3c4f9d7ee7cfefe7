"""Fixtures of the service tests: small model folders (good and broken), the apps in process
(`api`, `shipped`: what the routes answer) and real servers (what needs a socket)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.ports import free_port
from service.core.settings import Settings
from tests.conftest import ROOT, SHIPPED, shipped_models_dir
from tests.service.inprocess import InProcessApp
from tests.service.model_factory import build_model_folder, corrupt_hash

__all__ = ["SHIPPED", "shipped_models_dir"]
DIGITS = [str(d) for d in range(10)]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    grpc: str = ""  # host:port of its gRPC listener ("" where LATENTSERVE_GRPC_PORT is 0)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


def start_server(model_dir: Path, log: Path, ready: str = "/readyz", **settings: str) -> Server:
    """A uvicorn server on loopback, once `ready` answers 200."""
    port = free_port()
    grpc_port = settings.pop("grpc_port", None) or str(free_port(exclude=port))
    env = {
        **os.environ,
        "LATENTSERVE_MODEL_DIR": str(model_dir),
        "LATENTSERVE_PORT": str(port),
        "LATENTSERVE_LOG_LEVEL": "info",
        "LATENTSERVE_GRPC_PORT": grpc_port,
        **{f"LATENTSERVE_{key.upper()}": value for key, value in settings.items()},
    }
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=handle, stderr=handle
    )
    grpc = f"127.0.0.1:{grpc_port}" if grpc_port != "0" else ""
    server = Server(f"http://127.0.0.1:{port}", process, log, grpc)
    wait_ready(server, ready)
    return server


def wait_ready(server: Server, path: str = "/readyz", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server not ready in {timeout}s:\n{server.log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def fixture_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three good tiny models and three broken folders."""
    root = tmp_path_factory.mktemp("models")
    build_model_folder(root / "tiny-vae", "tiny-vae", latent_dim=4)
    build_model_folder(root / "tiny-cvae", "tiny-cvae", family="cvae", classes=["a", "b", "c"])
    build_model_folder(root / "tiny-ae", "tiny-ae", family="ae", latent_dim=2)
    build_model_folder(root / "bad-hash", "bad-hash")
    corrupt_hash(root / "bad-hash")
    build_model_folder(root / "missing-file", "missing-file")
    (root / "missing-file" / "encoder.pt").unlink()
    build_model_folder(root / "bad-manifest", "bad-manifest")
    manifest = json.loads((root / "bad-manifest" / "manifest.json").read_text())
    manifest["latent_dim"] = -3
    (root / "bad-manifest" / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="session")
def fixture_server(fixture_models: Path, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "fixture-server.log"
    server = start_server(fixture_models, log, **FIXTURE_SETTINGS)
    yield server
    stop_server(server)


FIXTURE_SETTINGS = {"default_model": "tiny-vae", "max_body_bytes": "2000000"}
IN_PROCESS = {"grpc_port": 0}  # the apps in process serve no gRPC (their servers do)


@pytest.fixture(scope="session")
def fixture_app(fixture_models: Path) -> Iterator[InProcessApp]:
    """The fixture models' app in this process (tests/service/inprocess.py)."""
    app = InProcessApp(Settings(model_dir=fixture_models, **FIXTURE_SETTINGS, **IN_PROCESS))
    yield app
    app.close()


@pytest.fixture
def api(fixture_app: InProcessApp) -> Iterator[httpx.Client]:
    """A client of the fixture models' app, in process: what the routes answer."""
    with fixture_app.client() as client:
        yield client


@pytest.fixture(scope="session")
def shipped_server(tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "shipped-onnx.log"
    server = start_server(shipped_models_dir(), log)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def shipped_torchscript_server(tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "shipped-torchscript.log"
    server = start_server(shipped_models_dir(), log, backend="torchscript")
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def shipped_app() -> Iterator[InProcessApp]:
    """The shipped models' app in this process, with the default settings."""
    app = InProcessApp(Settings(model_dir=shipped_models_dir(), **IN_PROCESS))
    yield app
    app.close()


@pytest.fixture
def shipped(shipped_app: InProcessApp) -> Iterator[httpx.Client]:
    """A client of the shipped models' app, in process: what the routes answer."""
    with shipped_app.client() as client:
        yield client
