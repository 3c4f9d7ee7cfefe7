# ruff: noqa: E501  (the catalog reads best as one case per line)
"""The bad-input catalog: each answer has its status, problem+json and a readable detail, and the
server keeps answering good requests, concurrent ones included."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from tests.service.helpers import assert_problem, b64, npy, png, random_digit

DIGIT_PNG = png(random_digit(0))
GOOD = {"images": [b64(DIGIT_PNG)]}
LATENT = [0.0, 0.0, 0.0, 0.0]


def bomb_png() -> bytes:
    """A PNG of a few kilobytes that declares 6000x6000 pixels."""
    buffer = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def json_body(text: str) -> dict:
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


CATALOG = [
    # (id, method, url, request kwargs, status, words in the detail)
    (
        "body too large",
        "POST",
        "/encode",
        {"content": b"\0" * 2_100_000, "headers": {"content-type": "image/png"}},
        413,
        ["limit"],
    ),
    (
        "too many images",
        "POST",
        "/encode",
        {"json": {"images": [b64(DIGIT_PNG)] * 1025}},
        422,
        ["1025", "limit"],
    ),
    (
        "too many npy images",
        "POST",
        "/encode",
        {
            "content": npy(np.zeros((1100, 28, 28), np.uint8)),
            "headers": {"content-type": "application/x-npy"},
        },
        422,
        ["1100"],
    ),
    (
        "decompression bomb",
        "POST",
        "/encode",
        {"content": bomb_png(), "headers": {"content-type": "image/png"}},
        422,
        ["6000x6000", "limit"],
    ),
    (
        "steps too few",
        "POST",
        "/interpolate",
        {"json": {"start": {"latent": LATENT}, "end": {"latent": LATENT}, "steps": 1}},
        422,
        ["steps"],
    ),
    (
        "steps too many",
        "POST",
        "/interpolate",
        {"json": {"start": {"latent": LATENT}, "end": {"latent": LATENT}, "steps": 65}},
        422,
        ["limit"],
    ),
    ("n zero", "GET", "/sample?n=0", {}, 422, ["n"]),
    ("n too many", "GET", "/sample?n=257", {}, 422, ["limit"]),
    ("negative temperature", "GET", "/sample?temperature=-1", {}, 422, ["temperature"]),
    (
        "wrong latent length",
        "POST",
        "/decode",
        {"json": {"latents": [[0.0, 1.0]]}},
        422,
        ["4 values", "got 2"],
    ),
    (
        "ragged latents",
        "POST",
        "/decode",
        {"json": {"latents": [LATENT, [0.0]]}},
        422,
        ["rectangular"],
    ),
    ("NaN latent", "POST", "/decode", json_body('{"latents": [[NaN, 0, 0, 0]]}'), 422, ["finite"]),
    (
        "Infinity latent",
        "POST",
        "/decode",
        json_body('{"latents": [[1e400, 0, 0, 0]]}'),
        422,
        ["finite"],
    ),
    (
        "inf in npy latents",
        "POST",
        "/decode",
        {
            "content": npy(np.array([[np.inf, 0, 0, 0]], np.float32)),
            "headers": {"content-type": "application/x-npy"},
        },
        422,
        ["finite"],
    ),
    ("NaN pixel", "POST", "/encode", json_body('{"images": [[[NaN]]]}'), 422, ["28x28"]),
    (
        "NaN in image",
        "POST",
        "/encode",
        {
            "content": npy(np.full((1, 28, 28), np.nan, np.float32)),
            "headers": {"content-type": "application/x-npy"},
        },
        422,
        ["finite"],
    ),
    (
        "pixels out of range",
        "POST",
        "/encode",
        {"json": {"images": [np.full((28, 28), 255.0).tolist()]}},
        422,
        ["[0.0, 1.0]"],
    ),
    ("unknown model", "GET", "/sample?model=nope", {}, 404, ["nope", "tiny-vae"]),
    ("refused model", "GET", "/sample?model=bad-hash", {}, 404, ["refused", "sha256"]),
    ("unknown model info", "GET", "/models/nope", {}, 404, ["nope"]),
    (
        "unsupported media type",
        "POST",
        "/encode",
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        415,
        ["text/plain", "application/json"],
    ),
    ("no media type", "POST", "/decode", {"content": b"hello"}, 415, ["no content-type"]),
    (
        "corrupt image bytes",
        "POST",
        "/encode",
        {"content": DIGIT_PNG[:60], "headers": {"content-type": "image/png"}},
        422,
        ["could not be decoded"],
    ),
    (
        "empty image",
        "POST",
        "/encode",
        {"content": b"", "headers": {"content-type": "image/png"}},
        422,
        ["empty"],
    ),
    ("bad base64", "POST", "/encode", {"json": {"images": ["not base64!"]}}, 422, ["base64"]),
    (
        "base64 of text",
        "POST",
        "/encode",
        {"json": {"images": [b64(b"plain text")]}},
        422,
        ["not an image in a format"],
    ),
    (
        "nested list wrong size",
        "POST",
        "/encode",
        {"json": {"images": [np.zeros((27, 28)).tolist()]}},
        422,
        ["28x28", "27x28"],
    ),
    (
        "nested list too deep",
        "POST",
        "/encode",
        {"json": {"images": [np.zeros((1, 1, 28, 28)).tolist()]}},
        422,
        ["[H][W]"],
    ),
    (
        "npy wrong channels",
        "POST",
        "/encode",
        {
            "content": npy(np.zeros((2, 2, 28, 28), np.float32)),
            "headers": {"content-type": "application/x-npy"},
        },
        422,
        ["channel"],
    ),
    (
        "npy five dimensions",
        "POST",
        "/encode",
        {
            "content": npy(np.zeros((1, 1, 1, 28, 28), np.float32)),
            "headers": {"content-type": "application/x-npy"},
        },
        422,
        ["[N,C,H,W]"],
    ),
    (
        "npy of strings",
        "POST",
        "/encode",
        {"content": npy(np.array(["a", "b"])), "headers": {"content-type": "application/x-npy"}},
        422,
        ["dtype"],
    ),
    (
        "npy truncated",
        "POST",
        "/decode",
        {
            "content": npy(np.zeros((4, 4), np.float32))[:-7],
            "headers": {"content-type": "application/x-npy"},
        },
        422,
        ["npy"],
    ),
    (
        "npy object pickle",
        "POST",
        "/decode",
        {
            "content": npy(np.array([{}], dtype=object)),
            "headers": {"content-type": "application/x-npy"},
        },
        422,
        ["npy"],
    ),
    ("invalid JSON", "POST", "/encode", json_body('{"images": ['), 422, ["invalid"]),
    (
        "deeply nested JSON",
        "POST",
        "/decode",
        json_body('{"latents": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        422,
        ["recursion"],
    ),
    ("wrong JSON types", "POST", "/encode", {"json": {"images": 5}}, 422, ["images"]),
    (
        "unknown JSON field",
        "POST",
        "/decode",
        {"json": {"latents": [LATENT], "latent": 1}},
        422,
        ["extra"],
    ),
    ("empty image list", "POST", "/encode", {"json": {"images": []}}, 422, ["images"]),
    (
        "both interpolation ends",
        "POST",
        "/interpolate",
        {"json": {"start": {"latent": LATENT, "image": "x"}, "end": {"latent": LATENT}}},
        422,
        ["exactly one"],
    ),
    (
        "labels on unconditional model",
        "POST",
        "/decode",
        {"json": {"latents": [LATENT], "labels": [1]}},
        422,
        ["not conditional"],
    ),
    ("missing labels", "GET", "/sample?model=tiny-cvae&n=2&label=7", {}, 422, ["out of range"]),
    (
        "no labels for conditional",
        "POST",
        "/decode?model=tiny-cvae",
        {"json": {"latents": [[0.0] * 4]}},
        422,
        ["conditional", "a, b, c"],
    ),
    (
        "labels count mismatch",
        "POST",
        "/decode?model=tiny-cvae",
        {"json": {"latents": [[0.0] * 4] * 3, "labels": [0, 1]}},
        422,
        ["2 labels"],
    ),
    (
        "sample on deterministic",
        "POST",
        "/encode?model=tiny-ae&sample=true",
        {"json": GOOD},
        422,
        ["deterministic"],
    ),
    (
        "interpolation files missing",
        "POST",
        "/interpolate",
        {"files": {"start": ("a.png", DIGIT_PNG, "image/png")}},
        422,
        ["end"],
    ),
    (
        "unknown method",
        "POST",
        "/interpolate?method=cubic",
        {"files": {"start": ("a.png", DIGIT_PNG), "end": ("b.png", DIGIT_PNG)}},
        422,
        ["method"],
    ),
    (
        "not acceptable",
        "POST",
        "/encode",
        {"json": GOOD, "headers": {"accept": "image/png"}},
        406,
        ["application/json"],
    ),
    ("unknown route", "GET", "/nowhere", {}, 404, ["/docs"]),
    ("wrong method", "DELETE", "/encode", {}, 405, ["POST"]),
]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "words"),
    [case[1:] for case in CATALOG],
    ids=[case[0] for case in CATALOG],
)
def test_bad_input_is_a_problem_not_a_crash(api, method, url, kwargs, status, words):
    assert_problem(api.request(method, url, **kwargs), status, *words)
    assert api.get("/healthz").status_code == 200


def test_chunked_body_over_the_limit_is_413(api):
    def chunks():
        for _ in range(40):
            yield b"\0" * 100_000

    response = api.post("/encode", content=chunks(), headers={"content-type": "image/png"})
    assert_problem(response, 413, "limit")


def test_validation_errors_list_each_field(api):
    body = assert_problem(api.get("/sample?n=abc&seed=-1"), 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("query", "n"), ("query", "seed")}


def test_good_requests_are_undisturbed_by_concurrent_bad_ones(fixture_server):
    """On a real server, the good and the bad requests on connections of their own."""
    with fixture_server.client() as api:
        expected = api.post("/encode", json=GOOD).json()["latents"]

    def good(_: int) -> list:
        with fixture_server.client() as client:
            response = client.post("/encode", json=GOOD)
            assert response.status_code == 200
            return response.json()["latents"]

    def bad(index: int) -> int:
        _, method, url, kwargs, status, _ = CATALOG[index % len(CATALOG)]
        with fixture_server.client() as client:
            return client.request(method, url, **kwargs).status_code

    with ThreadPoolExecutor(8) as pool:
        goods = pool.map(good, range(40))
        bads = pool.map(bad, range(len(CATALOG)))
        assert all(latents == expected for latents in goods)
        assert all(400 <= status < 500 for status in bads)
    with fixture_server.client() as api:
        assert api.get("/readyz").status_code == 200
