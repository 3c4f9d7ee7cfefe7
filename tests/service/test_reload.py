"""Model updates without downtime: SIGHUP under load swaps changed models in, refuses a broken
new version (the old one serves on), adds and removes models, and no request fails."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.service.conftest import start_server, stop_server
from tests.service.model_factory import build_model_folder, corrupt_hash

pytestmark = pytest.mark.slow

LATENT = {"latents": [[0.5, -0.5, 1.0, 0.0]]}
CLIENTS = 6


@dataclass
class Load:
    url: str
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not stop.is_set():
                try:
                    response = http.post("/decode?model=tiny-vae&output=array", json=LATENT)
                    sample = http.get("/sample?model=tiny-vae&n=4&seed=1")
                except httpx.HTTPError as error:
                    with self.lock:
                        self.failures.append(repr(error))
                    continue
                with self.lock:
                    self.answered += 2
                    for answer in (response, sample):
                        if answer.status_code != 200:
                            self.failures.append(f"{answer.status_code} {answer.text[:200]}")


def decoded(url: str) -> np.ndarray:
    response = httpx.post(f"{url}/decode?model=tiny-vae&output=array", json=LATENT)
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["images"], dtype=np.float32)


def reload_and_wait(server, log: Path) -> float:
    """SIGHUP, then the time the reload took, from the server's log line."""
    count = log.read_text().count("reloaded in")
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while log.read_text().count("reloaded in") == count:
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.05)
    line = [line for line in log.read_text().splitlines() if "reloaded in" in line][-1]
    return float(line.split("reloaded in ")[1].split(" s")[0])


def replace_folder(models: Path, name: str, seed: int, staging: Path) -> None:
    """A new version built beside the model folder, then renamed into place."""
    build_model_folder(staging / name, name, latent_dim=4, seed=seed)
    shutil.rmtree(models / name)
    (staging / name).rename(models / name)


def test_sighup_under_load_swaps_models_without_a_failed_request(tmp_path):
    models, staging = tmp_path / "models", tmp_path / "staging"
    build_model_folder(models / "tiny-vae", "tiny-vae", latent_dim=4, seed=0)
    build_model_folder(models / "tiny-ae", "tiny-ae", family="ae", latent_dim=2)
    log = tmp_path / "server.log"
    server = start_server(models, log, default_model="tiny-vae", queue_deadline_ms="30000")
    load = Load(server.url)
    stop = threading.Event()
    threads = [threading.Thread(target=load.client, args=(stop,)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        version_0 = decoded(server.url)
        time.sleep(0.5)

        # A new version of tiny-vae: swapped in.
        replace_folder(models, "tiny-vae", seed=1, staging=staging)
        swap_seconds = reload_and_wait(server, log)
        version_1 = decoded(server.url)
        assert not np.allclose(version_0, version_1)

        # A broken new version: refused with its reason; version 1 serves on.
        corrupt_hash(models / "tiny-vae")
        reload_and_wait(server, log)
        np.testing.assert_array_equal(decoded(server.url), version_1)
        failed = httpx.get(f"{server.url}/readyz").json()["failed"]
        assert failed == [
            {
                "name": "tiny-vae",
                "reason": "its new version is refused, the previous one serves on: "
                "decoder.onnx does not match its sha256 in the manifest",
            }
        ]

        # A model added, another removed.
        build_model_folder(models / "tiny-cvae", "tiny-cvae", family="cvae", classes=["a", "b"])
        shutil.rmtree(models / "tiny-ae")
        reload_and_wait(server, log)
        listed = {m["name"] for m in httpx.get(f"{server.url}/models").json()["models"]}
        assert listed == {"tiny-vae", "tiny-cvae"}
        assert httpx.get(f"{server.url}/sample?model=tiny-ae").status_code == 404
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        stop_server(server)
    print(
        f"\nreload under load: {load.answered} requests, {len(load.failures)} failed, "
        f"swap of one changed model {swap_seconds * 1000:.0f} ms"
    )
    assert load.failures == []
    assert load.answered > 0
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count("reloaded in") == 3
