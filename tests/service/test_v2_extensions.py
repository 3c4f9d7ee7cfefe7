"""The Open Inference Protocol's extensions over HTTP, through the tools generic users reach for:
Triton's client (sync and aio) and KServe's REST client — model configuration, statistics,
health bodies, the repository index and its load/unload refusal."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException

from service.core.settings import Settings
from service.models.oip import NO_REPOSITORY_CONTROL
from tests.service.conftest import Server

MAX_ITEMS = Settings.model_fields["max_images"].default
OVERRIDE = json.dumps({"max_batch_size": 8})  # a load with a configuration, as model analyzer sends


def connect(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)


@pytest.fixture(scope="module")
def client(shipped_server: Server) -> Iterator[triton.InferenceServerClient]:
    with connect(shipped_server) as client:
        yield client


def zeros(name: str, shape: list[int]) -> triton.InferInput:
    given = triton.InferInput(name, shape, "FP32")
    given.set_data_from_numpy(np.zeros(shape, np.float32))
    return given


@pytest.mark.parametrize("version", [None, "1"])
def test_model_config_is_tritons_shape(client, version):
    args = ("mnist-cvae-decoder",) if version is None else ("mnist-cvae-decoder", version)
    config = client.get_model_config(*args)
    assert config["name"] == "mnist-cvae-decoder"
    assert config["platform"] == "onnxruntime_onnx" and config["backend"] == "onnxruntime"
    assert config["max_batch_size"] == MAX_ITEMS
    assert config["input"] == [
        {"name": "latent", "data_type": "TYPE_FP32", "dims": [3]},
        {"name": "label", "data_type": "TYPE_FP32", "dims": [10]},
    ]
    assert config["output"] == [
        {"name": "image", "data_type": "TYPE_FP32", "dims": [1, 28, 28]},
        {"name": "logits", "data_type": "TYPE_FP32", "dims": [1, 28, 28]},
    ]
    batching = config["dynamic_batching"]
    assert batching["max_queue_delay_microseconds"] == 0
    assert batching["default_queue_policy"]["max_queue_size"] == 256
    assert config["instance_group"][0]["kind"] == "KIND_CPU"


def test_model_config_of_an_unknown_model_or_version_is_404(client):
    for args in (("nothing-encoder",), ("mnist-vae-encoder", "2")):
        with pytest.raises(InferenceServerException) as caught:
            client.get_model_config(*args)
        assert caught.value.status() == "404"


def test_statistics_count_what_the_runners_ran(client):
    name = "fashion-vae-encoder"
    before = client.get_inference_statistics(name)["model_stats"][0]
    client.infer(name, [zeros("image", [3, 1, 28, 28])])
    after = client.get_inference_statistics(name, "1")["model_stats"][0]
    assert after["name"] == name and after["version"] == "1"
    assert after["inference_count"] - before["inference_count"] == 3
    assert after["execution_count"] - before["execution_count"] == 1
    stats, old = after["inference_stats"], before["inference_stats"]
    assert stats["success"]["count"] - old["success"]["count"] == 1
    assert stats["compute_infer"]["ns"] > old["compute_infer"]["ns"]
    assert stats["success"]["ns"] >= stats["queue"]["ns"] + stats["compute_infer"]["ns"] - 1
    every = client.get_inference_statistics()["model_stats"]
    names = [entry["name"] for entry in every]
    assert name in names and "mnist-vae-decoder" in names and len(names) == len(set(names))


def test_health_bodies_follow_the_protocol(shipped):
    assert shipped.get("/v2/health/live").json() == {"live": True}
    assert shipped.get("/v2/health/ready").json() == {"ready": True}
    answer = shipped.get("/v2/models/mnist-vae-encoder/ready")
    assert answer.json() == {"name": "mnist-vae-encoder", "ready": True}
    answer = shipped.get("/v2/models/mnist-vae-encoder/versions/1/ready")
    assert answer.json() == {"name": "mnist-vae-encoder", "ready": True}


def test_repository_index_lists_the_models_and_refused_folders(client, fixture_server):
    index = client.get_model_repository_index()
    assert {"name": "mnist-ae-encoder", "version": "1", "state": "READY"} in index
    assert len(index) == 12
    with connect(fixture_server) as fixture:
        index = fixture.get_model_repository_index()
    states = {entry["name"]: entry["state"] for entry in index}
    assert states["tiny-vae-decoder"] == "READY"
    assert states["bad-hash-encoder"] == "UNAVAILABLE"
    refused = next(entry for entry in index if entry["name"] == "bad-hash-encoder")
    assert "sha256" in refused["reason"]
    ready = httpx.post(f"{fixture_server.url}/v2/repository/index", json={"ready": True}).json()
    assert {entry["state"] for entry in ready} == {"READY"}
    bad = httpx.post(f"{fixture_server.url}/v2/repository/index", json={"ready": 3})
    assert bad.status_code == 400 and "ready" in bad.json()["error"]


@pytest.mark.parametrize(
    ("call", "options"),
    [("load_model", {}), ("load_model", {"config": OVERRIDE}), ("unload_model", {})],
    ids=["load", "load-with-config", "unload"],
)
def test_load_and_unload_are_refused_with_the_reason(client, call, options):
    with pytest.raises(InferenceServerException) as caught:
        getattr(client, call)("mnist-vae-encoder", **options)
    assert caught.value.status() == "403"
    assert caught.value.message() == NO_REPOSITORY_CONTROL
    assert "--reload-model-disable" in NO_REPOSITORY_CONTROL  # what model analyzer needs


def test_tritons_aio_client(shipped_server):
    async def session() -> dict:
        client = triton_aio.InferenceServerClient(shipped_server.url.removeprefix("http://"))
        try:
            assert await client.is_server_live() and await client.is_server_ready()
            assert await client.is_model_ready("mnist-vae-decoder")
            config = await client.get_model_config("mnist-vae-decoder")
            assert config["input"] == [{"name": "latent", "data_type": "TYPE_FP32", "dims": [20]}]
            await client.get_inference_statistics("mnist-vae-decoder")
            assert await client.get_model_repository_index()
            given = triton_aio.InferInput("latent", [2, 20], "FP32")
            given.set_data_from_numpy(np.zeros((2, 20), np.float32))
            result = await client.infer("mnist-vae-decoder", [given])
            return {name: result.as_numpy(name) for name in ("image", "logits")}
        finally:
            await client.close()

    outputs = asyncio.run(session())
    assert outputs["image"].shape == outputs["logits"].shape == (2, 1, 28, 28)
    expected = 1 / (1 + np.exp(-outputs["logits"].astype(np.float64)))
    assert np.abs(outputs["image"] - expected).max() <= 1e-6


KSERVE_SCRIPT = """
import asyncio, json, sys
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

async def main(url):
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    live = await client.is_server_live(url)
    ready = await client.is_server_ready(url)
    model_ready = await client.is_model_ready(url, "mnist-ae-encoder")
    given = InferInput("image", [2, 1, 28, 28], "FP32")
    given.set_data_from_numpy(np.full((2, 1, 28, 28), 0.5, np.float32), binary_data=True)
    request = InferRequest("mnist-ae-encoder", [given], request_id="7")
    response = await client.infer(url, request, "mnist-ae-encoder")
    await client.close()
    print(json.dumps({"live": live, "ready": ready, "model_ready": model_ready, "id": response.id,
                      "name": response.outputs[0].name,
                      "latent": response.outputs[0].as_numpy().tolist()}))

asyncio.run(main(sys.argv[1]))
"""


def test_kserve_rest_client(shipped_server):
    """In a child process: kserve's protobuf messages clash with tritonclient.grpc's, which
    other tests of this session import (both register package `inference`)."""
    if importlib.util.find_spec("kserve") is None:
        pytest.skip("kserve is not installed")
    result = subprocess.run(
        [sys.executable, "-c", KSERVE_SCRIPT, shipped_server.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["live"] is True and answer["ready"] is True and answer["model_ready"] is True
    assert answer["id"] == "7" and answer["name"] == "latent"
    latents = np.asarray(answer["latent"])
    direct = httpx.post(
        f"{shipped_server.url}/encode",
        params={"model": "mnist-ae"},
        json={"images": np.full((2, 28, 28), 0.5).tolist()},
    ).json()["latents"]
    assert latents.shape == (2, 16) and np.abs(latents - np.asarray(direct)).max() <= 1e-6
