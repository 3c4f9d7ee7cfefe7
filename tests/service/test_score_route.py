"""POST /score on a real server: the shipped models judge real digits and clothing, the served
numbers are the numbers export calibrated with, and every input format and error behaves as on
the other image routes."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.core.settings import Settings
from tests.conftest import EXPORTED_MODELS
from tests.service.helpers import b64, npy, png, read_npy
from training.export import verify_folder

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

MAX_IMAGES = Settings.model_fields["max_images"].default
NPY_HEADERS = {"content-type": "application/x-npy", "accept": "application/x-npy"}


def idx_images(path: Path, start: int, stop: int) -> np.ndarray:
    pixels = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8, offset=16)
    return pixels.reshape(-1, 28, 28)[start:stop]


@pytest.fixture(scope="module")
def validation_digits(shared_mnist_root: Path) -> np.ndarray:
    """The digit models' validation split: t10k images 8000-8999, as float32 [N, 1, 28, 28]."""
    pixels = idx_images(shared_mnist_root / "t10k-images-idx3-ubyte.gz", 8000, 9000)
    return (pixels / 255.0).astype(np.float32)[:, None]


@pytest.fixture(scope="module")
def clothing(fashion_mnist_root: Path) -> np.ndarray:
    pixels = idx_images(fashion_mnist_root / "t10k-images-idx3-ubyte.gz", 0, 200)
    return (pixels / 255.0).astype(np.float32)[:, None]


def score_npy(client, model: str, images: np.ndarray) -> np.ndarray:
    """[N, 6] columns: score, percentile, anomalous; the corrected score's three after."""
    chunks = [
        read_npy(
            client.post(
                f"/score?model={model}", content=npy(images[i : i + 250]), headers=NPY_HEADERS
            )
        )
        for i in range(0, len(images), 250)
    ]
    return np.concatenate(chunks)


@pytest.mark.parametrize(
    "model", ["mnist-vae", "mnist-cvae", "mnist-ae", "mnist-vae-2d", "mnist-dae"]
)
def test_served_scores_reproduce_the_calibration_on_the_validation_split(
    shipped, validation_digits, model
):
    calibration = shipped.get(f"/models/{model}").json()["calibration"]
    columns = score_npy(shipped, model, validation_digits)
    assert columns.shape == (1000, 6)
    judged = [
        shipped.post(
            f"/score?model={model}",
            content=npy(validation_digits[i : i + 250]),
            headers={"content-type": "application/x-npy"},
        ).json()
        for i in range(0, 1000, 250)
    ]
    for offset, key in ((0, "score"), (3, "corrected")):
        part = calibration[key]
        values, percentiles, flagged = columns[:, offset : offset + 3].T
        np.testing.assert_allclose(
            np.quantile(values, part["levels"]), part["quantiles"], rtol=1e-4, atol=1e-3
        )
        # per-class thresholds rest on ~100 images each: 1 or 2 of a class lie above its 99 %
        assert flagged.mean() == pytest.approx(0.01, abs=0.01 if model == "mnist-cvae" else 0.002)
        # the model's threshold, or (the conditional model) that of each image's best class
        thresholds = np.concatenate(
            [(body if key == "score" else body["corrected"])["thresholds"] for body in judged]
        )
        if part["per_class_thresholds"] is None:
            assert (thresholds == part["threshold"]).all()
        assert np.array_equal(flagged == 1.0, values > thresholds)
        assert abs(np.median(percentiles) - 50.0) < 1.0


@pytest.mark.parametrize(
    "model", ["mnist-vae", "mnist-cvae", "mnist-ae", "mnist-vae-2d", "mnist-dae", "fashion-vae"]
)
def test_served_scores_are_the_float64_likelihood_of_the_decoders_logits(
    shipped, validation_digits, clothing, model
):
    images = (clothing if model == "fashion-vae" else validation_digits)[:100]
    manifest = verify_folder(EXPORTED_MODELS / model)
    encoder, decoder = (
        ort.InferenceSession(str(EXPORTED_MODELS / model / f"{part}.onnx"))
        for part in ("encoder", "decoder")
    )
    labels = [{}]
    if manifest.conditional:
        eye = np.eye(manifest.num_classes, dtype=np.float32)
        labels = [{"label": eye[[c] * len(images)]} for c in range(manifest.num_classes)]
    exact = []
    for label in labels:
        encoded = encoder.run(None, {"image": images, **label})
        logits = decoder.run(["logits"], {"latent": encoded[0], **label})[0]
        target = images.astype(np.float64).reshape(len(images), -1)
        z = logits.astype(np.float64).reshape(len(images), -1)
        nll = (np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))).sum(1)
        if manifest.variational:
            mean, logvar = (np.float64(a) for a in encoded)
            nll += 0.5 * (mean**2 + np.exp(logvar) - 1 - logvar).sum(1)
        exact.append(nll)
    served = score_npy(shipped, model, images)[:, 0]
    np.testing.assert_allclose(served, np.min(exact, axis=0), rtol=0, atol=1e-3)


def test_digit_models_flag_clothing(shipped, clothing):
    for model in ("mnist-vae", "mnist-ae", "mnist-dae"):
        body = shipped.post(
            f"/score?model={model}",
            content=npy(clothing[:100]),
            headers={"content-type": "application/x-npy"},
        ).json()
        assert np.mean(body["anomalous"]) > 0.9, model
        assert min(body["percentiles"]) > 90.0, model


def test_fashion_vae_plain_score_finds_digits_normal_and_the_corrected_one_flags_them(
    shipped, validation_digits
):
    body = shipped.post(
        "/score?model=fashion-vae",
        content=npy(validation_digits[:200]),
        headers={"content-type": "application/x-npy"},
    ).json()
    assert (body["score"], body["unit"]) == ("neg_elbo", "nats")
    assert body["corrected"]["score"] == "neg_elbo_minus_entropy"
    assert np.mean(body["anomalous"]) < 0.2  # Nalisnick et al.: digits look likely
    assert np.mean(body["corrected"]["anomalous"]) > 0.8


def test_every_input_format_gives_the_same_scores(shipped, validation_digits):
    pixels = np.rint(validation_digits[:3, 0] * 255).astype(np.uint8)
    as_png = [png(p) for p in pixels]
    answers = [
        shipped.post("/score", json={"images": [b64(p) for p in as_png]}),
        shipped.post("/score", json={"images": (pixels / 255.0).tolist()}),
        shipped.post(
            "/score", files=[("files", (f"{i}.png", p, "image/png")) for i, p in enumerate(as_png)]
        ),
        shipped.post("/score", content=npy(pixels), headers={"content-type": "application/x-npy"}),
    ]
    first = answers[0].json()
    assert first["model"] == "mnist-vae" and len(first["scores"]) == 3
    for answer in answers[1:]:
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["scores"], first["scores"], rtol=1e-5)
    one = shipped.post("/score", content=as_png[0], headers={"content-type": "image/png"})
    np.testing.assert_allclose(one.json()["scores"], first["scores"][:1], rtol=1e-5)
    assert set(first) == {
        "model",
        "score",
        "unit",
        "description",
        "scores",
        "threshold",
        "threshold_quantile",
        "percentiles",
        "anomalous",
        "corrected",
        "thresholds",
        "classes",
        "ink",
        "ink_range",
    }


def test_bad_requests_get_problems_a_person_can_act_on(shipped, validation_digits):
    cases = [
        (shipped.post("/score", content=b"hello", headers={"content-type": "text/plain"}), 415),
        (shipped.post("/score?model=nope", json={"images": [[[0.0]]]}), 404),
        (
            shipped.post(
                "/score", json={"images": [b64(png(np.zeros((28, 28), np.uint8)))], "labels": [3]}
            ),
            422,
        ),
        (
            shipped.post(
                "/score",
                content=npy(np.zeros((MAX_IMAGES + 1, 28, 28), np.float32)),
                headers={"content-type": "application/x-npy"},
            ),
            422,
        ),
        (shipped.post("/score", json={"images": []}), 422),
        (shipped.post("/score", json={"images": ["bm90IGFuIGltYWdl"]}), 422),
        (
            shipped.post(
                "/score",
                content=npy(validation_digits[:1]),
                headers={"content-type": "application/x-npy", "accept": "image/jpeg"},
            ),
            406,
        ),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]


def test_a_model_without_calibration_answers_409(api):
    response = api.post(
        "/score?model=tiny-vae",
        content=npy(np.zeros((1, 28, 28), np.float32)),
        headers={"content-type": "application/x-npy"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "without an anomaly-score calibration" in response.json()["detail"]
    assert api.get("/models/tiny-vae").json()["calibration"] is None
