"""Every route and format, against a real uvicorn server serving small fixture models."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.service.helpers import b64, decode_pngs, npy, png, random_digit, read_npy
from tests.service.model_factory import fixture_mixture

DIGIT = random_digit(0)
DIGIT_PNG = png(DIGIT)
UNIT = DIGIT.astype(np.float32) / 255


def test_health_and_readiness_list_loaded_and_refused_models(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["ready"] is True
    assert ready["models"] == ["tiny-ae", "tiny-cvae", "tiny-vae"]
    assert {f["name"] for f in ready["failed"]} == {"bad-hash", "missing-file", "bad-manifest"}


def test_encode_accepts_every_input_format_with_the_same_result(api):
    as_json = api.post("/encode", json={"images": [b64(DIGIT_PNG)]}).json()
    data_url = api.post(
        "/encode", json={"images": ["data:image/png;base64," + b64(DIGIT_PNG)]}
    ).json()
    raw = api.post("/encode", content=DIGIT_PNG, headers={"content-type": "image/png"}).json()
    multipart = api.post("/encode", files={"file": ("d.png", DIGIT_PNG, "image/png")}).json()
    nested = api.post("/encode", json={"images": [UNIT.tolist()]}).json()
    from_npy = api.post(
        "/encode", content=npy(DIGIT[None]), headers={"content-type": "application/x-npy"}
    ).json()
    expected = np.asarray(as_json["latents"])
    assert as_json["model"] == "tiny-vae" and as_json["latent_dim"] == 4
    for other in (data_url, raw, multipart, nested, from_npy):
        np.testing.assert_allclose(other["latents"], expected, atol=1e-5)
    assert as_json["mean"] == as_json["latents"] and len(as_json["logvar"][0]) == 4


def test_encode_many_files_and_npy_out(api):
    files = [("files", (f"{i}.png", png(random_digit(i)), "image/png")) for i in range(3)]
    response = api.post("/encode", files=files, headers={"accept": "application/x-npy"})
    latents = read_npy(response)
    assert latents.shape == (3, 4) and latents.dtype == np.float32


def test_jpeg_rgba_and_odd_sizes_are_converted(api):
    rgba = np.zeros((56, 40, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[10:20, 10:20, 3] = 255
    jpeg = io.BytesIO()
    Image.fromarray(random_digit(3, 64)).convert("RGB").save(jpeg, format="JPEG")
    for data, kind in ((png(rgba, "RGBA"), "image/png"), (jpeg.getvalue(), "image/jpeg")):
        response = api.post("/reconstruct", content=data, headers={"content-type": kind})
        assert response.status_code == 200, response.text
        assert response.json()["shape"] == [1, 1, 28, 28]


def test_sampled_encoding_is_seeded(api):
    body = {"images": [b64(DIGIT_PNG)], "sample": True, "seed": 11}
    first, second = (api.post("/encode", json=body).json() for _ in range(2))
    other = api.post("/encode", json={**body, "seed": 12}).json()
    assert first["latents"] == second["latents"] and first["seed"] == 11
    assert first["latents"] != other["latents"] and first["latents"] != first["mean"]


def test_decode_json_and_npy_in_and_three_outputs(api):
    latents = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    as_json = api.post("/decode", json={"latents": latents.tolist()}).json()
    assert as_json["shape"] == [3, 1, 28, 28] and len(as_json["images"]) == 3
    arrays = read_npy(
        api.post(
            "/decode",
            content=npy(latents),
            headers={"content-type": "application/x-npy", "accept": "application/x-npy"},
        )
    )
    assert arrays.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(decode_pngs(as_json["images"]), arrays[:, 0], atol=1 / 255 + 1e-6)
    as_lists = api.post("/decode?output=array", json={"latents": latents.tolist()}).json()
    np.testing.assert_allclose(as_lists["images"], arrays, atol=1e-6)
    grid = api.post("/decode", json={"latents": latents.tolist()}, headers={"accept": "image/png"})
    assert grid.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(grid.content)).size == (2 * 28 + 2, 2 * 28 + 2)


def test_reconstruct_equals_decode_of_encode(api):
    recon = api.post("/reconstruct?output=array", json={"images": [UNIT.tolist()]}).json()
    latents = api.post("/encode", json={"images": [UNIT.tolist()]}).json()["latents"]
    decoded = api.post("/decode?output=array", json={"latents": latents}).json()
    np.testing.assert_allclose(recon["images"], decoded["images"], atol=1e-5)
    mse = np.mean((np.asarray(recon["images"])[0, 0] - UNIT) ** 2)
    assert abs(recon["mse"][0] - mse) < 1e-5


def test_sample_is_reproducible_and_negotiates(api):
    first = api.get("/sample", params={"n": 5, "seed": 42}).json()
    again = api.get("/sample", params={"n": 5, "seed": 42}).json()
    other = api.get("/sample", params={"n": 5, "seed": 43}).json()
    assert first["images"] == again["images"] and first["latents"] == again["latents"]
    assert first["images"] != other["images"]
    drawn = api.get("/sample", params={"n": 2}).json()
    assert isinstance(drawn["seed"], int)
    replay = api.get("/sample", params={"n": 2, "seed": drawn["seed"]}).json()
    assert replay["images"] == drawn["images"]
    cooler = np.asarray(api.get("/sample?n=5&seed=42&temperature=0.1").json()["latents"])
    np.testing.assert_allclose(cooler, np.asarray(first["latents"]) * 0.1, atol=1e-5)
    grid = api.get("/sample?n=5&seed=42", headers={"accept": "image/png"})
    assert Image.open(io.BytesIO(grid.content)).size == (3 * 28 + 4, 2 * 28 + 2)


def test_mixture_sampling_for_deterministic_models(api):
    body = api.get("/sample", params={"model": "tiny-ae", "n": 256, "seed": 0}).json()
    latents = np.asarray(body["latents"])
    assert latents.shape == (256, 2) and body["labels"] is None
    assert api.get("/models/tiny-ae").json()["sampler"] == {
        "kind": "gaussian_mixture",
        "components": 2,
    }
    mixture = fixture_mixture(2)
    expected = np.average(mixture.means, axis=0, weights=mixture.weights)
    np.testing.assert_allclose(latents.mean(axis=0), expected, atol=0.2)


def test_conditional_sampling_with_each_label_and_analogies(api):
    for label in range(3):
        body = api.get(
            "/sample", params={"model": "tiny-cvae", "n": 2, "seed": 5, "label": label}
        ).json()
        assert body["labels"] == [label, label]
    cycled = api.get("/sample", params={"model": "tiny-cvae", "n": 4, "seed": 5}).json()
    assert cycled["labels"] == [0, 1, 2, 0]
    latent = api.post(
        "/encode?model=tiny-cvae", json={"images": [b64(DIGIT_PNG)], "labels": [0]}
    ).json()["latents"]
    as_each = [
        api.post(
            "/decode?model=tiny-cvae&output=array", json={"latents": latent, "labels": [label]}
        ).json()["images"]
        for label in range(3)
    ]
    assert as_each[0] != as_each[1] != as_each[2]
    by_query = api.post(
        "/decode?model=tiny-cvae&output=array&label=2", json={"latents": latent}
    ).json()["images"]
    assert by_query == as_each[2]


def test_interpolation_ends_are_the_reconstructions(api):
    start, end = random_digit(1), random_digit(2)
    for method in ("linear", "spherical"):
        body = api.post(
            "/interpolate?output=array",
            json={
                "start": {"image": b64(png(start))},
                "end": {"image": start.astype(np.float32).__truediv__(255).tolist()},
                "steps": 5,
                "method": method,
            },
        ).json()
        recon = api.post("/reconstruct?output=array", json={"images": [b64(png(start))]}).json()
        assert len(body["images"]) == 5 and body["method"] == method
        np.testing.assert_allclose(body["images"][0], recon["images"][0], atol=1e-5)
        np.testing.assert_allclose(body["images"][-1], recon["images"][0], atol=1e-5)
    files = {"start": ("a.png", png(start), "image/png"), "end": ("b.png", png(end), "image/png")}
    strip = api.post(
        "/interpolate?steps=6&method=spherical", files=files, headers={"accept": "image/png"}
    )
    assert strip.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(strip.content)).size == (6 * 28 + 5 * 2, 28)


def test_interpolation_between_latents_is_exact(api):
    body = api.post(
        "/interpolate",
        json={"start": {"latent": [0, 0, 0, 0]}, "end": {"latent": [1, 2, 3, 4]}, "steps": 3},
    ).json()
    np.testing.assert_allclose(body["latents"], [[0, 0, 0, 0], [0.5, 1, 1.5, 2], [1, 2, 3, 4]])


def test_models_report_backend_provider_and_shapes(api):
    listing = api.get("/models").json()
    assert listing["default"] == "tiny-vae"
    info = {m["name"]: m for m in listing["models"]}
    assert info["tiny-vae"]["backend"] == "onnx"
    assert info["tiny-vae"]["provider"] == "CPUExecutionProvider"
    assert info["tiny-cvae"]["inputs"]["encoder"][1] == {"name": "label", "shape": ["N", 3]}
    assert info["tiny-vae"]["outputs"]["encoder"][1]["name"] == "logvar"
    reasons = {f["name"]: f["reason"] for f in listing["failed"]}
    assert "sha256" in reasons["bad-hash"]
    assert "encoder.pt is missing" in reasons["missing-file"]
    assert "latent_dim" in reasons["bad-manifest"]
    reference = api.get("/models/tiny-cvae/reference").json()
    assert len(reference["class_means"]) == 3


def test_metrics_count_requests_per_route_and_model(api):
    api.get("/sample?n=3&seed=1&model=tiny-ae")
    text = api.get("/metrics").text
    assert 'latentserve_requests_total{model="tiny-ae",route="/sample",status="200"}' in text
    assert 'latentserve_inference_seconds_count{graph="decoder",model="tiny-ae"}' in text
    assert 'latentserve_images_processed_total{graph="decoder",model="tiny-ae"}' in text
    assert (
        'latentserve_request_duration_seconds_bucket{le="0.005",model="tiny-ae",route="/sample"}'
        in text
    )


def test_content_negotiation(api):
    assert (
        api.get("/sample?n=1", headers={"accept": "*/*"}).headers["content-type"]
        == "application/json"
    )
    preferred = api.get("/sample?n=1", headers={"accept": "image/png;q=0.5, application/x-npy"})
    assert preferred.headers["content-type"] == "application/x-npy"
    wildcard = api.get("/sample?n=1", headers={"accept": "image/*"})
    assert wildcard.headers["content-type"] == "image/png"


def test_a_non_square_upload_is_letterboxed_the_same_way_on_every_route(api):
    """A 56x28 digit is read as the 28x14 digit it scales to, centred on black (as the web
    page's pad shows it), not stretched to 28x28; the same through every image route."""
    wide = np.repeat(random_digit(4), 2, axis=1)  # 28 high, 56 wide
    boxed = np.zeros((28, 28), np.uint8)
    boxed[7:21] = np.asarray(Image.fromarray(wide).resize((28, 14), Image.Resampling.LANCZOS))
    stretched = np.asarray(Image.fromarray(wide).resize((28, 28), Image.Resampling.LANCZOS))
    for route in ("/encode", "/reconstruct", "/score"):
        sent = api.post(route, files={"file": ("wide.png", png(wide), "image/png")})
        as_boxed = api.post(route, files={"file": ("boxed.png", png(boxed), "image/png")})
        as_stretched = api.post(route, json={"images": [b64(png(stretched))]})
        if route == "/score" and sent.status_code == 409:  # fixture models: no calibration
            continue
        key = "scores" if route == "/score" else "latents"
        assert sent.status_code == 200, sent.text
        np.testing.assert_allclose(sent.json()[key], as_boxed.json()[key], atol=1e-5)
        assert not np.allclose(sent.json()[key], as_stretched.json()[key], atol=1e-3)
    frames = api.post(
        "/interpolate",
        params={"steps": 2},
        files={
            "start": ("a.png", png(wide), "image/png"),
            "end": ("b.png", png(boxed), "image/png"),
        },
    ).json()["latents"]
    np.testing.assert_allclose(frames[0], frames[1], atol=1e-5)
