"""The OpenAPI document: valid 3.1, precise where the models are known, and enforced as stated."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from service.core.settings import Settings
from service.models.latents import LATENT_LIMIT
from service.openapi import OPENAPI_FILE
from service.rest.schemas import SEED_MAX
from tests.service.conftest import SHIPPED
from tests.service.helpers import assert_problem

MODEL_ROUTES = ("/encode", "/reconstruct", "/decode", "/sample", "/interpolate", "/score")
LIMITS = Settings()  # the servers here run on the default limits


def parameter(document: dict, path: str, name: str) -> dict:
    operation = next(iter(document["paths"][path].values()))
    return next(p for p in operation["parameters"] if p["name"] == name)


def test_the_committed_document_is_valid_openapi_3_1():
    document = json.loads(OPENAPI_FILE.read_text())
    assert document["openapi"].startswith("3.1")
    validate(document)
    # Written with no model loaded: names are not enumerated, bounds that are settings are.
    assert "enum" not in parameter(document, "/sample", "model")["schema"]
    assert parameter(document, "/sample", "n")["schema"]["maximum"] == LIMITS.max_samples
    assert parameter(document, "/sample", "seed")["schema"] == {
        **parameter(document, "/sample", "seed")["schema"],
        "minimum": 0,
        "maximum": SEED_MAX,
    }


def references(node: object):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def test_every_reference_of_the_document_resolves():
    document = json.loads(OPENAPI_FILE.read_text())
    schemas = document["components"]["schemas"]
    refs = set(references(document))
    assert refs and all(ref.startswith("#/components/schemas/") for ref in refs)
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(schemas)


def test_the_served_document_names_the_loaded_models(shipped):
    document = shipped.get("/openapi.json").json()
    validate(document)
    for path in MODEL_ROUTES:
        assert parameter(document, path, "model")["schema"] == {
            "type": "string",
            "enum": sorted(SHIPPED),
        }
    assert parameter(document, "/models/{name}", "name")["schema"]["enum"] == sorted(SHIPPED)
    latents = document["components"]["schemas"]["DecodeRequest"]["properties"]["latents"]
    assert (latents["items"]["minItems"], latents["items"]["maxItems"]) == (2, 32)
    assert parameter(document, "/sample", "label")["schema"]["maximum"] == 9
    image = document["components"]["schemas"]["ImagesRequest"]["properties"]["images"]["items"]
    base64_png = image["anyOf"][0]
    assert base64_png["contentEncoding"] == "base64"
    assert base64_png["contentMediaType"] == "image/png"


def test_every_error_is_documented_as_problem_json_with_its_headers(shipped):
    document = shipped.get("/openapi.json").json()
    for path in MODEL_ROUTES:
        for operation in document["paths"][path].values():
            for status in ("401", "404", "422", "503"):
                response = operation["responses"][status]
                assert list(response["content"]) == ["application/problem+json"], (path, status)
            assert "Retry-After" in operation["responses"]["503"]["headers"]
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


@pytest.mark.parametrize(
    ("path", "body", "name"),
    [
        (f"/sample?n=1&seed={SEED_MAX + 1}", None, "seed"),
        (f"/sample?n=1&seed={10**26}", None, "seed"),
        ("/sample?n=1&label=-1&model=mnist-cvae", None, "label"),
        (f"/encode?sample=true&seed={SEED_MAX + 1}", {"images": [[[0.0] * 28] * 28]}, "seed"),
    ],
)
def test_query_bounds_of_the_document_are_enforced_by_the_served_route(shipped, path, body, name):
    method = "POST" if body is not None else "GET"
    response = shipped.request(method, path, json=body)
    problem = assert_problem(response, 422, name)
    assert ["query", name] in [error["loc"] for error in problem["errors"]]


def test_the_largest_seed_is_served_and_echoed(shipped):
    response = shipped.get(f"/sample?n=2&seed={SEED_MAX}&output=array")
    assert response.status_code == 200, response.text
    assert response.json()["seed"] == SEED_MAX
    again = shipped.get(f"/sample?n=2&seed={SEED_MAX}&output=array").json()
    assert again["images"] == response.json()["images"]


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        (f"/sample?n={LIMITS.max_samples + 1}", None, [f"limit of {LIMITS.max_samples}"]),
        (f"/interpolate?model=mnist-vae-2d&steps={LIMITS.max_steps + 1}",
         {"start": {"latent": [0, 0]}, "end": {"latent": [1, 1]}},
         [f"limit of {LIMITS.max_steps}"]),
        ("/interpolate?model=mnist-vae-2d",
         {"start": {"latent": [0, 0]}, "end": {"latent": [1, 1]}, "steps": LIMITS.max_steps + 1},
         [f"limit of {LIMITS.max_steps}"]),
        ("/decode?model=mnist-vae-2d", {"latents": [[LATENT_LIMIT * 2, 0]]}, ["less than"]),
        ("/decode?model=mnist-vae-2d", {"latents": [[3e38, -3e38]]}, ["less than"]),
        ("/encode", {"images": [[[0.0]]] * (LIMITS.max_images + 1)},
         [f"the limit is {LIMITS.max_images}"]),
    ],
)  # fmt: skip
def test_limits_the_document_states_are_enforced(shipped, path, body, words):
    method = "POST" if body is not None else "GET"
    assert_problem(shipped.request(method, path, json=body), 422, *words)


def test_json_interpolation_takes_steps_and_method_from_the_query(shipped):
    body = {"start": {"latent": [0.0, 0.0]}, "end": {"latent": [1.0, 1.0]}}
    response = shipped.post("/interpolate?model=mnist-vae-2d&steps=3&method=spherical", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["method"] == "spherical"
    assert response.json()["shape"] == [3, 1, 28, 28]


def test_a_v2_tensor_of_an_unknown_datatype_is_refused_not_a_crash(shipped):
    tensor = {"name": "latent", "shape": [1, 2], "datatype": {}, "data": [0.0, 0.0]}
    response = shipped.post("/v2/models/mnist-vae-2d-decoder/infer", json={"inputs": [tensor]})
    assert response.status_code == 400, response.text
    assert "FP32" in response.json()["error"]


@pytest.mark.parametrize("parameters", [False, [], 0, ""])
def test_v2_parameters_that_are_not_an_object_are_refused(shipped, parameters):
    tensor = {"name": "latent", "shape": [1, 2], "datatype": "FP32", "data": [0.0, 0.0]}
    body = {"inputs": [tensor], "parameters": parameters}
    response = shipped.post("/v2/models/mnist-vae-2d-decoder/infer", json=body)
    assert response.status_code == 400, response.text
    assert "must be an object" in response.json()["error"]


def test_v2_parameter_values_are_scalars(shipped):
    tensor = {"name": "latent", "shape": [1, 2], "datatype": "FP32", "data": [0.0, 0.0]}
    body = {"inputs": [tensor], "parameters": {"x-anything": {}}}
    response = shipped.post("/v2/models/mnist-vae-2d-decoder/infer", json=body)
    assert response.status_code == 400, response.text
    assert "'x-anything' must be a string, a number or a boolean" in response.json()["error"]
    body["parameters"] = {"x-anything": "ignored", "binary_data_output": False}
    assert shipped.post("/v2/models/mnist-vae-2d-decoder/infer", json=body).status_code == 200
