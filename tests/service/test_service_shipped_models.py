"""The shipped models, served by a real uvicorn server, on real MNIST test digits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EXPORTED_MODELS
from tests.service.conftest import SHIPPED
from tests.service.helpers import b64, npy, png, read_npy

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

MNIST_MODELS = [name for name in SHIPPED if name.startswith("mnist")]


@pytest.fixture(scope="module")
def digits(shared_mnist_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """32 test-split digits (images 9000-9031 of the shared set) and their labels."""
    images = gzip.decompress((shared_mnist_root / "t10k-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((shared_mnist_root / "t10k-labels-idx1-ubyte.gz").read_bytes())
    pixels = np.frombuffer(images, np.uint8, offset=16).reshape(-1, 28, 28)[9000:9032]
    return pixels, np.frombuffer(labels, np.uint8, offset=8)[9000:9032].astype(int)


def labels_for(model: str, labels: np.ndarray) -> dict:
    return {"labels": labels.tolist()} if model == "mnist-cvae" else {}


@pytest.mark.parametrize("model", MNIST_MODELS)
def test_reconstruct_is_decode_of_encode_and_good(shipped, digits, model):
    pixels, labels = digits
    body = {"images": [b64(png(p)) for p in pixels], **labels_for(model, labels)}
    recon = shipped.post(f"/reconstruct?model={model}&output=array", json=body).json()
    latents = shipped.post(f"/encode?model={model}", json=body).json()["latents"]
    decoded = shipped.post(
        f"/decode?model={model}&output=array",
        json={"latents": latents, **labels_for(model, labels)},
    ).json()
    np.testing.assert_allclose(recon["images"], decoded["images"], atol=1e-4)
    # The service's image path (PNG, scaling) must match training's: its error on test digits
    # stays near the test error the export recorded.
    recorded = shipped.get(f"/models/{model}").json()["metrics"]["recon_mse"]
    assert np.mean(recon["mse"]) < 1.5 * recorded, (np.mean(recon["mse"]), recorded)


@pytest.mark.parametrize("model", SHIPPED)
def test_seeded_sampling_is_reproducible(shipped, model):
    params = {"model": model, "n": 6, "seed": 2024}
    first = read_npy(shipped.get("/sample", params=params, headers={"accept": "application/x-npy"}))
    again = read_npy(shipped.get("/sample", params=params, headers={"accept": "application/x-npy"}))
    assert first.shape[0] == 6 and np.array_equal(first, again)
    assert first.min() >= 0.0 and first.max() <= 1.0 and first.std() > 0.01


def test_interpolation_ends_are_the_reconstructions(shipped, digits):
    pixels, _ = digits
    start, end = b64(png(pixels[0])), b64(png(pixels[1]))
    frames = shipped.post(
        "/interpolate?model=mnist-vae&output=array",
        json={"start": {"image": start}, "end": {"image": end}, "steps": 7, "method": "spherical"},
    ).json()["images"]
    recon = shipped.post(
        "/reconstruct?model=mnist-vae&output=array", json={"images": [start, end]}
    ).json()["images"]
    np.testing.assert_allclose(frames[0], recon[0], atol=1e-4)
    np.testing.assert_allclose(frames[-1], recon[1], atol=1e-4)


def test_conditional_sampling_with_each_label(shipped):
    grids = []
    for label in range(10):
        body = shipped.get(
            "/sample", params={"model": "mnist-cvae", "n": 4, "seed": 1, "label": label}
        ).json()
        assert body["labels"] == [label] * 4
        grids.append(np.asarray(body["images"]))
    assert len({g.tobytes() for g in grids}) == 10


def test_analogy_keeps_the_latent_and_changes_the_class(shipped, digits):
    pixels, labels = digits
    image, label = b64(png(pixels[0])), int(labels[0])
    latent = shipped.post(
        "/encode?model=mnist-cvae", json={"images": [image], "labels": [label]}
    ).json()["latents"]
    as_every_digit = read_npy(
        shipped.post(
            "/decode?model=mnist-cvae",
            json={"latents": latent * 10, "labels": list(range(10))},
            headers={"accept": "application/x-npy"},
        )
    )
    recon = shipped.post(
        "/reconstruct?model=mnist-cvae&output=array", json={"images": [image], "labels": [label]}
    ).json()["images"]
    np.testing.assert_allclose(as_every_digit[label], recon[0], atol=1e-4)
    others = [i for i in range(10) if i != label]
    assert min(np.abs(as_every_digit[i] - as_every_digit[label]).mean() for i in others) > 0.01


def test_denoising_model_removes_noise(shipped, digits):
    """At the corruption it was trained against, the model's output is nearer the clean digit."""
    pixels, _ = digits
    training = json.loads((EXPORTED_MODELS / "mnist-dae" / "manifest.json").read_text())["training"]
    level = json.loads(training["model_options"])["noise_level"]
    clean = pixels.astype(np.float32) / 255
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, level, clean.shape), 0, 1)
    denoised = read_npy(
        shipped.post(
            "/reconstruct?model=mnist-dae",
            content=npy(noisy.astype(np.float32)),
            headers={"content-type": "application/x-npy", "accept": "application/x-npy"},
        )
    )[:, 0]
    assert np.mean((denoised - clean) ** 2) < np.mean((noisy - clean) ** 2)


def test_models_report_the_onnx_provider(shipped):
    listing = shipped.get("/models").json()
    assert sorted(m["name"] for m in listing["models"]) == sorted(SHIPPED)
    assert not listing["failed"]
    for info in listing["models"]:
        assert (info["backend"], info["provider"]) == ("onnx", "CPUExecutionProvider")
    assert {m["name"]: m["sampler"]["kind"] for m in listing["models"]}["mnist-ae"] == (
        "gaussian_mixture"
    )


@pytest.mark.parametrize("model", SHIPPED)
def test_torchscript_serves_what_onnx_serves(shipped, shipped_torchscript_server, digits, model):
    pixels, labels = digits
    body = {"images": [b64(png(p)) for p in pixels[:8]], **labels_for(model, labels[:8])}
    params = {"model": model, "n": 4, "seed": 3, "output": "array"}
    with shipped_torchscript_server.client() as torchscript:
        info = torchscript.get(f"/models/{model}").json()
        assert (info["backend"], info["provider"]) == ("torchscript", "cpu")
        for method, path, kwargs in (
            ("POST", f"/encode?model={model}", {"json": body}),
            ("POST", f"/reconstruct?model={model}&output=array", {"json": body}),
            ("GET", "/sample", {"params": params}),
        ):
            expected = shipped.request(method, path, **kwargs).json()
            actual = torchscript.request(method, path, **kwargs).json()
            for key in ("latents", "images"):
                if key in expected:
                    np.testing.assert_allclose(actual[key], expected[key], atol=1e-4)
