"""The Open Inference Protocol over gRPC, spoken by the tools themselves against real servers:
tritonclient.grpc (sync and aio), KServe's InferenceGRPCClient, the grpc.health.v1 probe; the
same numbers as the domain routes, the same sentences as over HTTP, keys, batching with HTTP,
and a SIGTERM under load that loses nothing.

tritonclient.grpc and kserve each register the protocol's messages (package `inference`) in
protobuf's default pool and cannot be imported into one process: KServe's client runs in a
child process. The service's own stubs keep a pool of their own (scripts/grpc-stubs), so an app
serving gRPC lives beside tritonclient.grpc in this process (tested)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
import tritonclient.http as triton_http
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from deploy.ports import free_port
from service.models.oip import NO_REPOSITORY_CONTROL
from tests.service.conftest import ROOT, Server, shipped_models_dir, start_server, stop_server
from tests.service.helpers import npy

TOLERANCE = 1e-6
KEY = "grpc-test-key-0123456789"


def connect(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.grpc)


@pytest.fixture(scope="module")
def client(shipped_server: Server) -> Iterator[triton.InferenceServerClient]:
    with connect(shipped_server) as client:
        yield client


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 1, 28, 28), dtype=np.float32)


def tensor(name: str, array: np.ndarray) -> triton.InferInput:
    given = triton.InferInput(name, list(array.shape), "FP32")
    given.set_data_from_numpy(array)
    return given


def one_model_dir(tmp_path: Path, name: str = "mnist-vae") -> Path:
    root = tmp_path / "models"
    root.mkdir()
    (root / name).symlink_to(shipped_models_dir() / name, target_is_directory=True)
    return root


# ---- health, metadata, configuration, statistics, repository ---------------------------------


def test_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("mnist-vae-encoder") and client.is_model_ready(
        "mnist-ae-decoder", "1"
    )
    assert not client.is_model_ready("mnist-vae-encoder", "2")
    assert not client.is_model_ready("no-such-encoder")
    metadata = client.get_server_metadata(as_json=True)
    assert metadata["name"] == "latentserve" and "binary_tensor_data" in metadata["extensions"]
    model = client.get_model_metadata("mnist-cvae-decoder", as_json=True)
    assert model["versions"] == ["1"] and model["platform"] == "onnxruntime_onnx"
    assert [(t["name"], t["shape"]) for t in model["inputs"]] == [
        ("latent", ["-1", "3"]),
        ("label", ["-1", "10"]),
    ]
    assert [t["name"] for t in model["outputs"]] == ["image", "logits"]


def test_config_statistics_and_index_are_the_http_ones(client, shipped_server):
    http = triton_http.InferenceServerClient(shipped_server.url.removeprefix("http://"))
    config = client.get_model_config("mnist-vae-encoder", as_json=True)["config"]
    expected = http.get_model_config("mnist-vae-encoder")
    assert config["name"] == expected["name"] and config["max_batch_size"] == 1024
    assert config["input"] == [
        {"name": "image", "data_type": "TYPE_FP32", "dims": ["1", "28", "28"]}
    ]
    assert config["dynamic_batching"]["preferred_batch_size"] == [64]
    before = client.get_inference_statistics("mnist-vae-encoder", as_json=True)["model_stats"][0]
    client.infer("mnist-vae-encoder", [tensor("image", images(4))])
    after = http.get_inference_statistics("mnist-vae-encoder")["model_stats"][0]
    assert after["inference_count"] - int(before.get("inference_count", 0)) == 4
    every = client.get_inference_statistics(as_json=True)["model_stats"]
    assert len(every) == 12
    index = client.get_model_repository_index(as_json=True)["models"]
    assert index == http.get_model_repository_index()
    http.close()


@pytest.mark.parametrize(
    ("call", "options"),
    [("load_model", {}), ("load_model", {"config": '{"max_batch_size": 8}'}), ("unload_model", {})],
    ids=["load", "load-with-config", "unload"],
)
def test_load_and_unload_are_refused_with_the_reason(client, call, options):
    with pytest.raises(InferenceServerException) as caught:
        getattr(client, call)("mnist-vae-encoder", **options)
    assert caught.value.status() == "StatusCode.UNIMPLEMENTED"
    assert caught.value.message() == NO_REPOSITORY_CONTROL


def test_the_health_probe(shipped_server):
    with grpc.insecure_channel(shipped_server.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            health.Check(health_pb2.HealthCheckRequest(service="other"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


# ---- inference: the numbers of the domain routes ----------------------------------------------


@pytest.mark.parametrize("name", ["mnist-vae", "mnist-cvae"])
def test_encoder_and_decoder_answer_what_the_domain_routes_answer(client, shipped, name):
    batch = images(5, seed=3)
    labels = [1, 4, 0, 9, 2]
    inputs = [tensor("image", batch)]
    params: dict = {"model": name}
    if name == "mnist-cvae":
        inputs.append(tensor("label", np.eye(10, dtype=np.float32)[labels]))
        params["label"] = labels
    encoded = client.infer(f"{name}-encoder", inputs)
    domain = shipped.post(
        "/encode", params=params, content=npy(batch), headers={"Content-Type": "application/x-npy"}
    ).json()
    for key in ("mean", "logvar"):
        got = encoded.as_numpy(key)
        assert np.abs(got - np.asarray(domain[key], np.float32)).max() <= TOLERANCE
    latents = encoded.as_numpy("mean")
    decode_inputs = [tensor("latent", latents)]
    body: dict = {"latents": latents.tolist()}
    if name == "mnist-cvae":
        decode_inputs.append(tensor("label", np.eye(10, dtype=np.float32)[labels]))
        body["labels"] = labels
    decoded = client.infer(f"{name}-decoder", decode_inputs)
    domain_images = shipped.post(
        "/decode", params={"model": name}, json=body, headers={"Accept": "application/x-npy"}
    )
    expected = np.load(__import__("io").BytesIO(domain_images.content))
    assert np.abs(decoded.as_numpy("image") - expected).max() <= TOLERANCE
    logits = decoded.as_numpy("logits").astype(np.float64)
    assert np.abs(1 / (1 + np.exp(-logits)) - decoded.as_numpy("image")).max() <= TOLERANCE
    only = client.infer(
        f"{name}-decoder", decode_inputs, outputs=[triton.InferRequestedOutput("logits")]
    )
    assert only.as_numpy("image") is None and only.as_numpy("logits") is not None


def test_typed_contents_and_fp64_are_read(client):
    batch = images(2, seed=9).astype(np.float64)
    given = triton.InferInput("image", [2, 1, 28, 28], "FP64")
    given.set_data_from_numpy(batch)
    raw = client.infer("mnist-ae-encoder", [given]).as_numpy("latent")
    again = client.infer("mnist-ae-encoder", [tensor("image", batch.astype(np.float32))])
    assert np.abs(raw - again.as_numpy("latent")).max() <= TOLERANCE


def test_errors_are_status_codes_with_the_http_sentences(client, shipped_server):
    http = triton_http.InferenceServerClient(shipped_server.url.removeprefix("http://"))
    small, bright = np.zeros((1, 1, 5, 5), np.float32), np.full((1, 1, 28, 28), 7, np.float32)
    cases = [
        ("nothing-encoder", "image", images(1), "NOT_FOUND", "404"),
        ("mnist-vae-encoder", "image", small, "INVALID_ARGUMENT", "400"),
        ("mnist-vae-encoder", "image", bright, "INVALID_ARGUMENT", "400"),
        ("mnist-vae-encoder", "latent", np.zeros((1, 20), np.float32), "INVALID_ARGUMENT", "400"),
    ]
    for model, name, array, code, status in cases:
        with pytest.raises(InferenceServerException) as over_grpc:
            client.infer(model, [tensor(name, array)])
        over_http_input = triton_http.InferInput(name, list(array.shape), "FP32")
        over_http_input.set_data_from_numpy(array)
        with pytest.raises(InferenceServerException) as over_http:
            http.infer(model, [over_http_input])
        assert over_grpc.value.status() == f"StatusCode.{code}"
        assert over_http.value.status() == status
        assert over_grpc.value.message() == over_http.value.message()
    http.close()


def test_the_aio_client(shipped_server):
    async def session() -> np.ndarray:
        client = triton_aio.InferenceServerClient(shipped_server.grpc)
        try:
            assert await client.is_server_live() and await client.is_server_ready()
            assert await client.is_model_ready("mnist-vae-decoder")
            config = await client.get_model_config("mnist-vae-decoder", as_json=True)
            assert config["config"]["input"][0]["dims"] == ["20"]
            given = triton_aio.InferInput("latent", [3, 20], "FP32")
            given.set_data_from_numpy(np.zeros((3, 20), np.float32))
            answers = await asyncio.gather(
                *(client.infer("mnist-vae-decoder", [given]) for _ in range(8))
            )
            return answers[0].as_numpy("image")
        finally:
            await client.close()

    assert asyncio.run(session()).shape == (3, 1, 28, 28)


KSERVE_SCRIPT = """
import asyncio, json, sys
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest

async def main():
    client = InferenceGRPCClient(sys.argv[1], timeout=30)
    live = await client.is_server_live()
    ready = await client.is_server_ready()
    model_ready = await client.is_model_ready("mnist-ae-encoder")
    given = InferInput("image", [2, 1, 28, 28], "FP32")
    given.set_data_from_numpy(np.full((2, 1, 28, 28), 0.5, np.float32), binary_data=True)
    response = await client.infer(InferRequest("mnist-ae-encoder", [given], request_id="9"))
    await client.close()
    latent = response.outputs[0].as_numpy()
    print(json.dumps({"live": live, "ready": ready, "model_ready": model_ready,
                      "id": response.id, "latent": latent.tolist()}))

asyncio.run(main())
"""


def test_kserve_grpc_client(shipped_server, shipped):
    if importlib.util.find_spec("kserve") is None:  # not imported here: see the docstring
        pytest.skip("kserve is not installed")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KSERVE_SCRIPT), shipped_server.grpc],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["live"] and answer["ready"] and answer["model_ready"] and answer["id"] == "9"
    direct = shipped.post(
        "/encode", params={"model": "mnist-ae"}, json={"images": np.full((2, 28, 28), 0.5).tolist()}
    ).json()["latents"]
    assert np.abs(np.asarray(answer["latent"]) - np.asarray(direct)).max() <= TOLERANCE


# ---- keys, limits, batching with HTTP, drain -------------------------------------------------


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("grpc-keyed")
    server = start_server(
        one_model_dir(tmp),
        tmp / "server.log",
        api_keys=KEY,
        max_body_bytes="100000",
        batch_max_wait_ms="1000",
        queue_deadline_ms="5000",
    )
    yield server
    stop_server(server)


def test_keys_are_enforced_and_probes_stay_open(keyed_server):
    with connect(keyed_server) as anonymous:
        assert anonymous.is_server_live() and anonymous.is_server_ready()
        for headers, words in (
            (None, "needs an API key"),
            ({"authorization": "Bearer wrong-key-0123456789"}, "not valid"),
        ):
            with pytest.raises(InferenceServerException) as caught:
                anonymous.get_model_metadata("mnist-vae-encoder", headers=headers)
            assert caught.value.status() == "StatusCode.UNAUTHENTICATED"
            assert words in caught.value.message()
        for headers in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}):
            metadata = anonymous.get_model_metadata("mnist-vae-encoder", headers=headers)
            assert metadata.name == "mnist-vae-encoder"
    with grpc.insecure_channel(keyed_server.grpc) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_the_message_limit_is_the_body_limit(keyed_server):
    with connect(keyed_server) as client, pytest.raises(InferenceServerException) as caught:
        client.infer("mnist-vae-encoder", [tensor("image", images(40))], headers={"x-api-key": KEY})
    assert caught.value.status() == "StatusCode.RESOURCE_EXHAUSTED"


def batches(server: Server) -> tuple[float, float]:
    text = httpx.get(f"{server.url}/metrics", headers={"x-api-key": KEY}).text
    found = {
        kind: float(
            re.search(
                rf'latentserve_batch_size_{kind}\{{graph="encoder",model="mnist-vae"\}} (\S+)', text
            ).group(1)
        )
        for kind in ("count", "sum")
    }
    return found["count"], found["sum"]


def test_a_grpc_request_and_an_http_request_share_one_batch(keyed_server):
    grpc_images, http_images = images(3, seed=5), images(2, seed=6)
    before = batches(keyed_server)

    def over_grpc() -> np.ndarray:
        with connect(keyed_server) as client:
            answer = client.infer(
                "mnist-vae-encoder", [tensor("image", grpc_images)], headers={"x-api-key": KEY}
            )
            return answer.as_numpy("mean")

    def over_http() -> np.ndarray:
        response = httpx.post(
            f"{keyed_server.url}/encode",
            params={"model": "mnist-vae"},
            content=npy(http_images),
            headers={"Content-Type": "application/x-npy", "x-api-key": KEY},
            timeout=30,
        )
        return np.asarray(response.json()["latents"], dtype=np.float32)

    with ThreadPoolExecutor(2) as pool:
        grpc_future, http_future = pool.submit(over_grpc), pool.submit(over_http)
        grpc_future.result(), http_future.result()
    count, total = batches(keyed_server)
    assert (count - before[0], total - before[1]) == (1, 5), "the two requests were not batched"


def test_sigterm_under_grpc_load_loses_nothing(tmp_path):
    """Every call a handler took is answered, right; the calls sent once the listener closes
    are refused before any handler runs (UNAVAILABLE, or CANCELLED when one races the close)."""
    drain_delay = 1.0
    server = start_server(
        one_model_dir(tmp_path),
        tmp_path / "server.log",
        drain_delay=str(drain_delay),
        shutdown_grace="10",
    )
    answered: list[float] = []
    refused: list[float] = []
    failures: list[str] = []
    signalled = threading.Event()
    clock: dict[str, float] = {}

    def load(worker: int) -> None:
        batch = images(2, seed=worker)
        with connect(server) as client:
            expected = client.infer("mnist-vae-encoder", [tensor("image", batch)])
            expected = expected.as_numpy("mean")
            while True:
                started = time.monotonic()
                try:
                    answer = client.infer(
                        "mnist-vae-encoder", [tensor("image", batch)], client_timeout=20
                    )
                except InferenceServerException as exc:
                    late = signalled.is_set() and started - clock["signal"] >= drain_delay
                    if exc.status() in REFUSED and late:
                        refused.append(started - clock["signal"])
                    else:
                        failures.append(f"{exc.status()}: {exc.message()}")
                    return
                if np.abs(answer.as_numpy("mean") - expected).max() > TOLERANCE:
                    failures.append("a wrong answer")
                answered.append(started)

    try:
        threads = [threading.Thread(target=load, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        clock["signal"] = time.monotonic()
        signalled.set()
        server.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(30)
        assert server.process.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        stop_server(server)
    log = server.log.read_text()
    assert failures == [], failures
    during_drain = [t for t in answered if t > clock["signal"]]
    assert len(during_drain) > 6, f"the calls went on through the drain delay: {during_drain}"
    assert len(refused) == 6, (refused, log[-3000:])
    assert "gRPC listener closed; 0 call(s) cut by the grace period" in log


REFUSED = ("StatusCode.UNAVAILABLE", "StatusCode.CANCELLED")


def test_the_service_and_tritonclient_grpc_live_in_one_process(tmp_path):
    """Our stubs register in a descriptor pool of their own, not in protobuf's default one where
    tritonclient.grpc's identical messages already are: an app serving gRPC in this process."""
    from service.core.settings import Settings
    from tests.service.inprocess import InProcessApp

    port = free_port()
    app = InProcessApp(Settings(model_dir=one_model_dir(tmp_path), grpc_port=port, port=0))
    try:
        with triton.InferenceServerClient(f"127.0.0.1:{port}") as local:
            latent = local.infer("mnist-vae-encoder", [tensor("image", images(1))])
            assert latent.as_numpy("mean").shape == (1, 20)
    finally:
        app.close()


def test_grpc_port_0_turns_grpc_off(tmp_path):
    server = start_server(one_model_dir(tmp_path), tmp_path / "server.log", grpc_port="0")
    try:
        assert server.grpc == ""
        assert "gRPC" not in server.log.read_text()
        assert httpx.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
    finally:
        stop_server(server)


# ---- ModelStreamInfer ----------------------------------------------------------------------


class StreamAnswers:
    """What tritonclient's stream callback receives: results by request id, stream errors."""

    def __init__(self) -> None:
        self.results: dict[str, object] = {}
        self.errors: list[InferenceServerException] = []
        self.arrived = threading.Condition()

    def __call__(self, result, error) -> None:
        with self.arrived:
            if error is not None:
                self.errors.append(error)
            else:
                self.results[result.get_response().id] = result
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 30) -> None:
        with self.arrived:
            assert self.arrived.wait_for(
                lambda: len(self.results) + len(self.errors) >= count, timeout
            ), (len(self.results), self.errors)


def test_a_stream_answers_each_request_as_the_domain_routes_and_goes_on_after_an_error(
    client, shipped
):
    batches_ = [images(2, seed=20 + n) for n in range(6)]
    small = np.zeros((1, 1, 5, 5), np.float32)
    with pytest.raises(InferenceServerException) as unary:
        client.infer("mnist-vae-encoder", [tensor("image", small)])
    answers = StreamAnswers()
    client.start_stream(callback=answers)
    for n, batch in enumerate(batches_):
        client.async_stream_infer("mnist-vae-encoder", [tensor("image", batch)], request_id=f"e{n}")
        if n == 2:
            client.async_stream_infer(
                "mnist-vae-encoder", [tensor("image", small)], request_id="bad"
            )
    client.async_stream_infer(
        "mnist-vae-2d-decoder", [tensor("latent", np.zeros((3, 2), np.float32))], request_id="d"
    )
    client.stop_stream()  # half-closes, then waits for the server to answer everything

    assert sorted(answers.results) == sorted([f"e{n}" for n in range(6)] + ["d"])
    # the failed request answers its error's sentence, as the unary call does, and only it
    assert [error.message() for error in answers.errors] == [unary.value.message()]
    for n, batch in enumerate(batches_):
        domain = shipped.post(
            "/encode",
            params={"model": "mnist-vae"},
            content=npy(batch),
            headers={"Content-Type": "application/x-npy"},
        ).json()
        got = answers.results[f"e{n}"].as_numpy("mean")
        assert np.abs(got - np.asarray(domain["mean"], np.float32)).max() <= TOLERANCE
    unary_images = client.infer(
        "mnist-vae-2d-decoder", [tensor("latent", np.zeros((3, 2), np.float32))]
    )
    streamed = answers.results["d"].as_numpy("image")
    assert streamed.shape == (3, 1, 28, 28)
    assert np.abs(streamed - unary_images.as_numpy("image")).max() <= TOLERANCE


def test_a_stream_needs_the_key_and_its_requests_batch_together(keyed_server):
    with connect(keyed_server) as anonymous:
        refused = StreamAnswers()
        anonymous.start_stream(callback=refused)
        # the server may end the stream before this is sent: then tritonclient refuses to send
        with contextlib.suppress(InferenceServerException):
            anonymous.async_stream_infer("mnist-vae-encoder", [tensor("image", images(1))])
        refused.wait_for(1)
        anonymous.stop_stream()
    assert refused.results == {}
    assert refused.errors[0].status() == "StatusCode.UNAUTHENTICATED"
    assert "needs an API key" in refused.errors[0].message()

    before = batches(keyed_server)
    with connect(keyed_server) as client:
        answers = StreamAnswers()
        client.start_stream(callback=answers, headers={"authorization": f"Bearer {KEY}"})
        for n in range(4):  # the runner lingers up to a second (batch_max_wait_ms) for company
            client.async_stream_infer(
                "mnist-vae-encoder", [tensor("image", images(1, seed=n))], request_id=str(n)
            )
        client.stop_stream()
    assert sorted(answers.results) == ["0", "1", "2", "3"] and answers.errors == []
    count, total = batches(keyed_server)
    assert (count - before[0], total - before[1]) == (1, 4), "a stream's requests ran one by one"


def test_sigterm_ends_a_stream_with_everything_it_read_answered(tmp_path):
    """The stream goes on through the drain delay; then the server stops reading, answers what
    it read and ends the stream with UNAVAILABLE: the answered ids are exactly the first ones
    sent, so a client knows what to send again."""
    drain_delay = 1.0
    server = start_server(
        one_model_dir(tmp_path), tmp_path / "server.log", drain_delay=str(drain_delay)
    )
    batch = images(2, seed=4)
    answers = StreamAnswers()
    sent = 0
    try:
        with connect(server) as client:
            expected = client.infer("mnist-vae-encoder", [tensor("image", batch)]).as_numpy("mean")
            client.start_stream(callback=answers)
            signalled_at = None
            while not answers.errors and sent < 20000:
                try:
                    client.async_stream_infer(
                        "mnist-vae-encoder", [tensor("image", batch)], request_id=str(sent)
                    )
                except InferenceServerException:  # the stream ended before its callback ran
                    break
                sent += 1
                time.sleep(0.002)
                if sent == 200:
                    signalled_at = time.monotonic()
                    server.process.send_signal(signal.SIGTERM)
            client.stop_stream()
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        stop_server(server)
    assert signalled_at is not None
    assert len(answers.errors) == 1, answers.errors
    assert answers.errors[0].status() == "StatusCode.UNAVAILABLE"
    assert "every request this stream received has been answered" in answers.errors[0].message()
    answered = sorted(int(key) for key in answers.results)
    assert answered == list(range(len(answered))), "a request in the middle went unanswered"
    assert len(answered) > 200, "the stream was not served through the drain delay"
    for result in answers.results.values():
        assert np.abs(result.as_numpy("mean") - expected).max() <= TOLERANCE
    assert "gRPC listener closed; 0 call(s) cut by the grace period" in server.log.read_text()
