"""The Open Inference Protocol (KServe V2 REST), spoken by Triton's own client against real
servers on the shipped models: metadata, health, inference in JSON and binary tensor data, the
same numbers as the domain routes, and the protocol's errors."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from service.core.settings import Settings
from tests.service.conftest import Server, shipped_models_dir, start_server, stop_server
from tests.service.helpers import npy, read_npy

TOLERANCE = 1e-6
MAX_ITEMS = Settings.model_fields["max_images"].default  # the shipped server's limit


def connect(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)


@pytest.fixture(scope="module")
def client(shipped_server: Server) -> Iterator[triton.InferenceServerClient]:
    with connect(shipped_server) as client:
        yield client


def manifest(name: str) -> dict:
    return json.loads((shipped_models_dir() / name / "manifest.json").read_text())


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 1, 28, 28), dtype=np.float32)


def one_hot(labels: list[int], classes: int = 10) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels]


def tensor(name: str, array: np.ndarray, binary: bool = True) -> triton.InferInput:
    given = triton.InferInput(name, list(array.shape), "FP32")
    given.set_data_from_numpy(array, binary_data=binary)
    return given


def wanted(*names: str, binary: bool = True) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=binary) for name in names]


# ---- server and model metadata, health ---------------------------------------------------------


def test_server_is_live_ready_and_names_its_extensions(client):
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "latentserve" and metadata["version"]
    assert "binary_tensor_data" in metadata["extensions"]


@pytest.mark.parametrize(
    ("v2_model", "inputs", "outputs"),
    [
        ("mnist-vae-encoder", {"image": [-1, 1, 28, 28]}, {"mean": [-1, 20], "logvar": [-1, 20]}),
        (
            "mnist-ae-decoder",
            {"latent": [-1, 16]},
            {"image": [-1, 1, 28, 28], "logits": [-1, 1, 28, 28]},
        ),
        (
            "mnist-cvae-encoder",
            {"image": [-1, 1, 28, 28], "label": [-1, 10]},
            {"mean": [-1, 3], "logvar": [-1, 3]},
        ),
        (
            "mnist-cvae-decoder",
            {"latent": [-1, 3], "label": [-1, 10]},
            {"image": [-1, 1, 28, 28], "logits": [-1, 1, 28, 28]},
        ),
    ],
)
def test_model_metadata_is_the_graphs_signature(client, v2_model, inputs, outputs):
    name, graph = v2_model.rsplit("-", 1)
    signature = manifest(name)[graph]
    assert list(inputs) == signature["inputs"] and list(outputs) == signature["outputs"]
    metadata = client.get_model_metadata(v2_model)
    assert metadata == client.get_model_metadata(v2_model, "1")
    assert metadata["name"] == v2_model and metadata["versions"] == ["1"]
    assert metadata["platform"] == "onnxruntime_onnx"
    for key, expected in (("inputs", inputs), ("outputs", outputs)):
        assert metadata[key] == [
            {"name": n, "datatype": "FP32", "shape": shape} for n, shape in expected.items()
        ]


def test_a_refused_model_folder_names_its_reason(fixture_server):
    with connect(fixture_server) as client, pytest.raises(InferenceServerException) as caught:
        client.get_model_metadata("bad-hash-encoder")
    assert caught.value.status() == "404"
    assert "refused at start-up" in caught.value.message() and "sha256" in caught.value.message()


def test_model_readiness(client):
    assert client.is_model_ready("mnist-vae-encoder")
    assert client.is_model_ready("fashion-vae-decoder", "1")
    assert not client.is_model_ready("mnist-vae-encoder", "2")
    assert not client.is_model_ready("mnist-vae")
    assert not client.is_model_ready("no-such-encoder")


def test_torchscript_backend_reports_its_platform(shipped_torchscript_server):
    with connect(shipped_torchscript_server) as client:
        metadata = client.get_model_metadata("mnist-vae-decoder")
    assert metadata["platform"] == "pytorch_torchscript"


# ---- inference: the numbers of the domain routes ----------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("name", ["mnist-vae", "mnist-cvae", "mnist-ae"])
def test_encoder_answers_what_encode_answers(client, shipped, name, binary):
    batch, labels = images(5, seed=1), [3, 1, 4, 1, 5]
    conditional = manifest(name)["conditional"]
    inputs = [tensor("image", batch, binary)]
    if conditional:
        inputs.append(tensor("label", one_hot(labels), binary))
    outputs = manifest(name)["encoder"]["outputs"]
    result = client.infer(
        f"{name}-encoder", inputs, request_id="r-1", outputs=wanted(*outputs, binary=binary)
    )
    assert result.get_response()["id"] == "r-1"
    domain = shipped.post(
        "/encode",
        params={"model": name, "label": labels if conditional else []},
        content=npy(batch),
        headers={"Content-Type": "application/x-npy"},
    ).json()
    first = result.as_numpy(outputs[0])
    assert first.dtype == np.float32 and first.shape == (5, manifest(name)["latent_dim"])
    np.testing.assert_allclose(first, domain["latents"], atol=TOLERANCE, rtol=0)
    if "logvar" in outputs:
        np.testing.assert_allclose(result.as_numpy("logvar"), domain["logvar"], atol=TOLERANCE)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("name", ["mnist-vae-2d", "mnist-cvae"])
def test_decoder_answers_what_decode_answers(client, shipped, name, binary):
    dim = manifest(name)["latent_dim"]
    latents = np.random.default_rng(2).normal(size=(4, dim)).astype(np.float32)
    labels = [7, 0, 2, 9]
    inputs = [tensor("latent", latents, binary)]
    body: dict = {"latents": latents.tolist()}
    if manifest(name)["conditional"]:
        inputs.append(tensor("label", one_hot(labels), binary))
        body["labels"] = labels
    # No outputs named: tritonclient asks for all of them as binary data.
    result = client.infer(f"{name}-decoder", inputs)
    domain = shipped.post(
        "/decode",
        params={"model": name},
        json=body,
        headers={"Accept": "application/x-npy"},
    )
    np.testing.assert_allclose(result.as_numpy("image"), read_npy(domain), atol=TOLERANCE, rtol=0)


def test_only_the_requested_outputs_are_answered(client):
    result = client.infer(
        "mnist-vae-encoder", [tensor("image", images(2))], outputs=wanted("logvar", binary=False)
    )
    response = result.get_response()
    assert [output["name"] for output in response["outputs"]] == ["logvar"]
    assert result.as_numpy("mean") is None and result.as_numpy("logvar").shape == (2, 20)


def test_plain_json_as_the_specification_shows(shipped):
    """No client library: the request and response objects of the REST specification."""
    request = {
        "id": "42",
        "inputs": [
            {
                "name": "latent",
                "shape": [2, 2],
                "datatype": "FP32",
                "data": [[0.0, 0.0], [1.5, -0.5]],  # nested; flat works alike
            }
        ],
        "outputs": [{"name": "image"}],
    }
    response = shipped.post("/v2/models/mnist-vae-2d-decoder/infer", json=request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in response.headers
    body = response.json()
    assert body["id"] == "42" and body["model_name"] == "mnist-vae-2d-decoder"
    (output,) = body["outputs"]
    assert output["name"] == "image" and output["datatype"] == "FP32"
    assert output["shape"] == [2, 1, 28, 28] and len(output["data"]) == 2 * 28 * 28
    domain = shipped.post(
        "/decode",
        params={"model": "mnist-vae-2d"},
        json={"latents": [[0.0, 0.0], [1.5, -0.5]]},
        headers={"Accept": "application/x-npy"},
    )
    image = np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
    np.testing.assert_allclose(image, read_npy(domain), atol=TOLERANCE, rtol=0)


def test_binary_response_framing(shipped):
    """The binary extension by hand: header length, binary_data_size and the bytes after."""
    latent = np.array([[0.25, -1.0]], dtype="<f4")
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "latent",
                    "shape": [1, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    response = shipped.post(
        "/v2/models/mnist-vae-2d-decoder/infer",
        content=header + latent.tobytes(),
        headers={
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(header)),
        },
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    head = json.loads(response.content[:length])
    image_out, logits_out = head["outputs"]  # every output, in the graph's order
    assert [image_out["name"], logits_out["name"]] == ["image", "logits"]
    sizes = [out["parameters"]["binary_data_size"] for out in (image_out, logits_out)]
    assert sizes == [28 * 28 * 4] * 2 and sum(sizes) == len(response.content) - length
    image = np.frombuffer(response.content[length : length + sizes[0]], "<f4")
    logits = np.frombuffer(response.content[length + sizes[0] :], "<f4")
    image, logits = image.reshape(image_out["shape"]), logits.reshape(logits_out["shape"])
    assert image.shape == (1, 1, 28, 28) and image.min() >= 0 and image.max() <= 1
    np.testing.assert_allclose(image, 1 / (1 + np.exp(-logits.astype(np.float64))), atol=1e-6)


# ---- errors ----------------------------------------------------------------------------------


def bad_requests() -> list:
    vae_image = images(1)
    return [
        pytest.param(
            "no-such-encoder", [tensor("image", vae_image)], 404, ["no model named"], id="model"
        ),
        pytest.param(
            "mnist-vae-encoder",
            [tensor("picture", vae_image)],
            400,
            ["takes the inputs", "image"],
            id="input-name",
        ),
        pytest.param(
            "mnist-vae-encoder",
            [tensor("image", images(1)[:, :, :, :27])],
            400,
            ["shape", "[-1, 1, 28, 28]"],
            id="shape",
        ),
        pytest.param(
            "mnist-cvae-encoder",
            [tensor("image", vae_image)],
            400,
            ["label"],
            id="missing-label",
        ),
        pytest.param(
            "mnist-cvae-decoder",
            [tensor("latent", np.zeros((2, 3), np.float32)), tensor("label", one_hot([1]))],
            400,
            ["one batch size"],
            id="batch-sizes",
        ),
        pytest.param(
            "mnist-vae-2d-decoder",
            [tensor("latent", np.array([[0.0, np.nan]], np.float32), binary=False)],
            400,
            ["finite"],
            id="nan-json",
        ),
        pytest.param(
            "mnist-vae-2d-decoder",
            [tensor("latent", np.array([[np.inf, 0.0]], np.float32))],
            400,
            ["finite"],
            id="inf-binary",
        ),
        pytest.param(
            "mnist-vae-encoder",
            [tensor("image", vae_image * 3)],
            400,
            ["must lie in"],
            id="range",
        ),
        pytest.param(
            "mnist-vae-2d-decoder",
            [tensor("latent", np.zeros((MAX_ITEMS + 1, 2), np.float32))],
            400,
            [str(MAX_ITEMS + 1), f"limit is {MAX_ITEMS}"],
            id="too-many",
        ),
    ]


@pytest.mark.parametrize(("model", "inputs", "status", "words"), bad_requests())
def test_bad_requests_raise_with_the_right_status(client, model, inputs, status, words):
    with pytest.raises(InferenceServerException) as caught:
        client.infer(model, inputs)
    assert caught.value.status() == str(status)
    for word in words:
        assert word.lower() in caught.value.message().lower()


def test_datatypes_other_than_floats_are_refused(client):
    given = triton.InferInput("latent", [1, 2], "INT32")
    given.set_data_from_numpy(np.zeros((1, 2), np.int32))
    with pytest.raises(InferenceServerException, match="FP32") as caught:
        client.infer("mnist-vae-2d-decoder", [given])
    assert caught.value.status() == "400"


def test_fp64_is_converted(client):
    latent = np.array([[0.5, -0.25]])
    given = triton.InferInput("latent", [1, 2], "FP64")
    given.set_data_from_numpy(latent)
    converted = client.infer("mnist-vae-2d-decoder", [given]).as_numpy("image")
    expected = client.infer(
        "mnist-vae-2d-decoder", [tensor("latent", latent.astype(np.float32))]
    ).as_numpy("image")
    np.testing.assert_array_equal(converted, expected)


def test_unknown_version_and_output_are_refused(client):
    inputs = [tensor("image", images(1))]
    with pytest.raises(InferenceServerException) as caught:
        client.infer("mnist-ae-encoder", inputs, model_version="2")
    assert caught.value.status() == "404" and "one version" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        client.infer("mnist-ae-encoder", inputs, outputs=wanted("mean"))
    assert caught.value.status() == "400" and "no output named 'mean'" in caught.value.message()


@pytest.mark.parametrize(
    ("body", "header", "words"),
    [
        pytest.param(b"{not json", None, "not valid JSON", id="json"),
        pytest.param(b'{"inputs": []}', None, "non-empty list", id="no-inputs"),
        pytest.param(
            b'{"inputs": [{"name": "latent", "shape": [1, 2], "datatype": ["FP32"]}]}',
            None,
            "this server reads FP32",
            id="datatype-list",
        ),
        pytest.param(b'{"inputs": [{"name": "latent"}]}xx', "abc", "byte count", id="header-nan"),
        pytest.param(b'{"inputs": []}', "999", "byte count", id="header-too-long"),
    ],
)
def test_malformed_requests_get_the_protocols_error(shipped, body, header, words):
    headers = {"Inference-Header-Content-Length": header} if header else {}
    response = shipped.post("/v2/models/mnist-vae-2d-decoder/infer", content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["error"]


GOOD_REQUEST = {
    "id": "1",
    "parameters": {"binary_data_output": False},
    "inputs": [
        {"name": "latent", "shape": [1, 3], "datatype": "FP32", "data": [0.0] * 3},
        {"name": "label", "shape": [1, 10], "datatype": "FP32", "data": [1.0] + [0.0] * 9},
    ],
    "outputs": [{"name": "image", "parameters": {"binary_data": False}}],
}
ODD_VALUES = [None, True, 0, -1, 1.5, 1e308, "x", "", [], {}, [1], [[1]], {"a": 1}, ["1"], 2**70]


def mutations(value: object, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    """Every field of `value` deleted or replaced by each odd value, and `value` itself too."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from mutations(child, (*path, key))
            yield (*path, key), DELETE
    elif isinstance(value, list):
        for index, child in enumerate(value[:2]):  # a long data list adds nothing new
            yield from mutations(child, (*path, index))
    for odd in ODD_VALUES:
        yield path, odd


DELETE = object()


def mutated(path: tuple, replacement: object) -> object:
    if not path:
        return replacement
    request = json.loads(json.dumps(GOOD_REQUEST))
    parent = request
    for key in path[:-1]:
        parent = parent[key]
    if replacement is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return request


def test_no_mutation_of_a_good_request_gets_a_5xx(shipped):
    url = "/v2/models/mnist-cvae-decoder/infer"
    assert shipped.post(url, json=GOOD_REQUEST).status_code == 200
    statuses = {}
    for path, replacement in mutations(GOOD_REQUEST):
        response = shipped.post(url, json=mutated(path, replacement))
        statuses[path, repr(replacement)] = response.status_code
        if response.status_code != 200:
            assert response.json()["error"]
    assert not {key: status for key, status in statuses.items() if status >= 500}
    assert sum(status == 400 for status in statuses.values()) > len(statuses) / 2


def binary_request(declared: int, data: bytes) -> tuple[bytes, dict]:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "latent",
                    "shape": [1, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": declared},
                }
            ]
        }
    ).encode()
    return header + data, {"Inference-Header-Content-Length": str(len(header))}


@pytest.mark.parametrize(
    ("declared", "data", "words"),
    [
        pytest.param(12, bytes(12), "takes 8", id="size-vs-shape"),
        pytest.param(8, bytes(4), "body ends inside", id="short"),
        pytest.param(8, bytes(16), "add up to 8", id="trailing"),
    ],
)
def test_inconsistent_binary_data_is_refused(shipped, declared, data, words):
    body, headers = binary_request(declared, data)
    response = shipped.post("/v2/models/mnist-vae-2d-decoder/infer", content=body, headers=headers)
    assert response.status_code == 400 and words in response.json()["error"]


def test_binary_data_without_the_header_length_is_explained(shipped):
    body, _ = binary_request(8, bytes(8))
    response = shipped.post("/v2/models/mnist-vae-2d-decoder/infer", content=body)
    assert response.status_code == 400
    assert "needs the Inference-Header-Content-Length header" in response.json()["error"]


def test_compressed_requests_are_refused(client):
    with pytest.raises(InferenceServerException) as caught:
        client.infer(
            "mnist-vae-2d-decoder",
            [tensor("latent", np.zeros((1, 2), np.float32))],
            request_compression_algorithm="gzip",
        )
    assert caught.value.status() == "415" and "compressed" in caught.value.message()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_unknown_routes_under_v2_answer_the_protocols_error(shipped, method):
    for path in ("/v2/nothing", "/v2/models/mnist-vae-encoder/nothing", "/v2/repository/x"):
        response = shipped.request(method, path)
        assert response.status_code == 404, (method, path)
        assert "no such route under /v2" in response.json()["error"]


def test_a_known_v2_path_with_another_method_is_405(shipped):
    response = shipped.put("/v2/models/mnist-vae-encoder")
    assert response.status_code == 405 and response.headers["allow"] == "GET"
    assert response.json() == {"error": "PUT is not allowed here; use GET"}
    response = shipped.get("/v2/repository/index")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_metrics_count_v2_requests_per_model(client, shipped_server):
    client.infer("mnist-dae-decoder", [tensor("latent", np.zeros((1, 32), np.float32))])
    with shipped_server.client() as server:  # the metrics of the server `client` spoke to
        text = server.get("/metrics").text
    assert re.search(
        r'latentserve_requests_total\{model="mnist-dae-decoder",'
        r'route="/v2/models/\{model\}/infer",status="200"\} [1-9]',
        text,
    ), text[:2000]


# ---- the graph runner's batching, limits and shedding apply to V2 alike ------------------------


def one_model_dir(tmp_path: Path, name: str = "mnist-vae") -> Path:
    root = tmp_path / "models"
    root.mkdir()
    (root / name).symlink_to(shipped_models_dir() / name, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def lingering_server(tmp_path_factory) -> Iterator[Server]:
    """Its graphs wait up to a second for company: concurrent requests share one batch."""
    tmp = tmp_path_factory.mktemp("v2-batching")
    server = start_server(
        one_model_dir(tmp),
        tmp / "server.log",
        batch_max_wait_ms="1000",
        queue_deadline_ms="5000",
        max_body_bytes="100000",
    )
    yield server
    stop_server(server)


def batches(server: Server, graph: str) -> tuple[float, float]:
    text = httpx.get(f"{server.url}/metrics").text
    found = {
        kind: float(
            re.search(
                rf'latentserve_batch_size_{kind}\{{graph="{graph}",model="mnist-vae"\}} (\S+)', text
            ).group(1)
        )
        for kind in ("count", "sum")
    }
    return found["count"], found["sum"]


def test_a_v2_request_and_a_domain_request_share_one_batch(lingering_server, client, shipped):
    v2_images, domain_images = images(3, seed=5), images(2, seed=6)
    before = batches(lingering_server, "encoder")

    def over_v2() -> np.ndarray:
        with connect(lingering_server) as lingering:
            return lingering.infer("mnist-vae-encoder", [tensor("image", v2_images)]).as_numpy(
                "mean"
            )

    def over_domain() -> np.ndarray:
        response = httpx.post(
            f"{lingering_server.url}/encode",
            params={"model": "mnist-vae"},
            content=npy(domain_images),
            headers={"Content-Type": "application/x-npy"},
            timeout=30,
        )
        return np.asarray(response.json()["latents"], dtype=np.float32)

    with ThreadPoolExecutor(2) as pool:
        v2_future, domain_future = pool.submit(over_v2), pool.submit(over_domain)
        v2_mean, domain_mean = v2_future.result(), domain_future.result()
    count, total = batches(lingering_server, "encoder")
    assert (count - before[0], total - before[1]) == (1, 5), "the two requests were not batched"
    alone_v2 = client.infer("mnist-vae-encoder", [tensor("image", v2_images)]).as_numpy("mean")
    alone_domain = client.infer("mnist-vae-encoder", [tensor("image", domain_images)]).as_numpy(
        "mean"
    )
    np.testing.assert_allclose(v2_mean, alone_v2, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(domain_mean, alone_domain, atol=TOLERANCE, rtol=0)


def test_body_limit_answers_413_in_the_protocols_form(lingering_server):
    with connect(lingering_server) as lingering, pytest.raises(InferenceServerException) as caught:
        lingering.infer("mnist-vae-encoder", [tensor("image", images(40))])
    assert caught.value.status() == "413" and "exceeds the limit" in caught.value.message()


def test_shed_requests_get_503_with_retry_after(tmp_path):
    # Every request waits 50 ms for company, past a 1 ms deadline: each one is shed.
    server = start_server(
        one_model_dir(tmp_path),
        tmp_path / "server.log",
        batch_max_wait_ms="50",
        queue_deadline_ms="1",
    )
    try:
        request = {
            "inputs": [{"name": "latent", "shape": [1, 20], "datatype": "FP32", "data": [0] * 20}]
        }
        response = httpx.post(f"{server.url}/v2/models/mnist-vae-decoder/infer", json=request)
        assert response.status_code == 503
        assert response.headers["retry-after"] and "deadline" in response.json()["error"]
        with connect(server) as shedding, pytest.raises(InferenceServerException) as caught:
            shedding.infer("mnist-vae-decoder", [tensor("latent", np.zeros((1, 20), np.float32))])
        assert caught.value.status() == "503"
    finally:
        stop_server(server)


def test_a_keyed_server_without_models_is_live_but_not_ready(tmp_path):
    """Its probes stay open; everything else needs the key, and says so in the protocol's form."""
    (tmp_path / "empty").mkdir()
    key = "v2-test-key-0123456789"
    server = start_server(
        tmp_path / "empty", tmp_path / "server.log", ready="/v2/health/live", api_keys=key
    )
    try:
        with connect(server) as anonymous:
            assert anonymous.is_server_live() and not anonymous.is_server_ready()
            with pytest.raises(InferenceServerException) as caught:
                anonymous.get_server_metadata()
            assert caught.value.status() == "401" and caught.value.message()
        with connect(server) as keyed:
            metadata = keyed.get_server_metadata(headers={"Authorization": f"Bearer {key}"})
            assert metadata["name"] == "latentserve"
            with pytest.raises(InferenceServerException) as caught:
                keyed.get_model_metadata("mnist-vae-encoder", headers={"X-API-Key": key})
            assert caught.value.status() == "404"
    finally:
        stop_server(server)


def test_readiness_turns_false_when_the_server_drains(tmp_path):
    server = start_server(
        one_model_dir(tmp_path), tmp_path / "server.log", drain_delay="2", shutdown_grace="3"
    )
    try:
        with connect(server) as client:
            assert client.is_server_ready()
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 1.5
            while client.is_server_ready() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not client.is_server_ready() and client.is_server_live()
    finally:
        stop_server(server)
