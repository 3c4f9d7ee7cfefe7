"""POST /score?maps=true on a real server: where an image is anomalous, in three forms, equal to
the offline computation from the same graphs; thresholds a user can read and override; the
conditional model's per-class thresholds; blank images judged anomalous."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import EXPORTED_MODELS
from tests.service.helpers import npy, read_npy
from tests.service.test_score_route import idx_images
from training.anomaly import GraphScorer
from training.export import verify_folder

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

MODELS = ["mnist-vae-2d", "mnist-vae", "mnist-cvae", "mnist-ae", "mnist-dae", "fashion-vae"]
NPY_IN = {"content-type": "application/x-npy"}


@pytest.fixture(scope="module")
def digits(shared_mnist_root) -> np.ndarray:
    """Held-out test digits (t10k 9000-9019), float32 [20, 1, 28, 28]."""
    pixels = idx_images(shared_mnist_root / "t10k-images-idx3-ubyte.gz", 9000, 9020)
    return (pixels / 255.0).astype(np.float32)[:, None]


def with_blob(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A bright 6x6 square pasted into an empty corner of each image, and its mask."""
    mask = np.zeros(images.shape[-2:], bool)
    mask[1:7, 1:7] = True
    defective = images.copy()
    defective[:, :, mask] = 1.0
    return defective, mask


def offline_maps(model: str, images: np.ndarray) -> tuple[np.ndarray, object]:
    manifest = verify_folder(EXPORTED_MODELS / model)
    scorer = GraphScorer(
        EXPORTED_MODELS / model,
        variational=manifest.variational,
        num_classes=manifest.num_classes if manifest.conditional else 0,
        reconstruction="bce",
    )
    return scorer.pixel_maps(images, manifest.calibration.pixel.sigma), manifest


@pytest.mark.parametrize("model", MODELS)
def test_npy_maps_equal_the_offline_computation_from_the_same_graphs(shipped, digits, model):
    images, _ = with_blob(digits[:8])
    response = shipped.post(
        f"/score?model={model}&maps=true",
        content=npy(images),
        headers={**NPY_IN, "accept": "application/x-npy"},
    )
    assert response.status_code == 200, response.text
    served = read_npy(response)
    expected, _ = offline_maps(model, images)
    assert served.dtype == np.float32 and served.shape == (8, 28, 28)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model", ["mnist-vae", "mnist-ae", "mnist-cvae"])
def test_json_maps_show_where_a_pasted_blob_is(shipped, digits, model):
    images, mask = with_blob(digits[:8])
    body = shipped.post(f"/score?model={model}&maps=true", content=npy(images), headers=NPY_IN)
    assert body.status_code == 200, body.text
    body = body.json()
    maps, manifest = offline_maps(model, images)
    pixel = manifest.calibration.pixel
    got = body["maps"]
    assert (got["unit"], got["sigma"], got["statistic"]) == ("nats", pixel.sigma, pixel.statistic)
    thresholds = np.asarray(got["pixel_thresholds"])
    expected = pixel.per_class if manifest.conditional else [pixel.threshold]
    assert set(thresholds) <= set(expected)
    assert got["anomalous_pixels"] == (maps > thresholds[:, None, None]).sum(axis=(1, 2)).tolist()
    for text, one in zip(got["heatmaps"], maps, strict=True):
        heat = np.asarray(Image.open(io.BytesIO(base64.b64decode(text)))).sum(axis=2)
        assert heat.shape == (28, 28)
        peak = np.unravel_index(one.argmax(), mask.shape)
        assert mask[peak], "the map's largest value lies in the pasted blob"
        assert heat[peak] == heat.max(), "and the heatmap is brightest there"
        assert one[mask].mean() > 5 * one[~mask].mean()
    assert all(body["anomalous"]), "a bright square beside a digit is anomalous"


def test_png_grid_has_a_row_per_image_and_four_columns(shipped, digits):
    images, _ = with_blob(digits[:3])
    response = shipped.post(
        "/score?model=mnist-vae", content=npy(images), headers={**NPY_IN, "accept": "image/png"}
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    grid = np.asarray(Image.open(io.BytesIO(response.content)))
    assert grid.shape == (3 * 28 + 2 * 2, 4 * 28 + 3 * 2, 3)
    first_image = grid[:28, :28, 0]
    np.testing.assert_allclose(first_image / 255.0, images[0, 0], atol=1 / 255 + 1e-6)
    mask = grid[:28, 3 * 30 :, 0]
    assert set(np.unique(mask)) <= {0, 255} and (mask[1:7, 1:7] == 255).any()


def test_thresholds_can_be_overridden_per_request(shipped, digits):
    images = digits[:5]
    base = shipped.post("/score?model=mnist-vae&maps=true", content=npy(images), headers=NPY_IN)
    calibrated = base.json()
    assert calibrated["thresholds"] == [calibrated["threshold"]] * 5
    low = shipped.post(
        "/score?model=mnist-vae&maps=true&threshold=1&corrected_threshold=2&pixel_threshold=-1",
        content=npy(images),
        headers=NPY_IN,
    ).json()
    assert low["threshold"] == 1.0 and low["thresholds"] == [1.0] * 5 and all(low["anomalous"])
    assert low["corrected"]["threshold"] == 2.0 and all(low["corrected"]["anomalous"])
    assert low["scores"] == calibrated["scores"] and low["percentiles"] == calibrated["percentiles"]
    assert low["maps"]["pixel_thresholds"] == [-1.0] * 5
    assert low["maps"]["anomalous_pixels"] == [28 * 28] * 5
    high = shipped.post(
        "/score?model=mnist-vae&threshold=1e9", content=npy(images), headers=NPY_IN
    ).json()
    assert not any(high["anomalous"])
    refused = shipped.post(
        "/score?model=mnist-vae&threshold=nan", content=npy(images), headers=NPY_IN
    )
    assert refused.status_code == 422 and "threshold" in refused.text


def test_the_conditional_model_judges_by_the_class_that_explains_an_image_best(shipped, digits):
    calibration = shipped.get("/models/mnist-cvae").json()["calibration"]
    per_class = calibration["score"]["per_class_thresholds"]
    assert len(per_class) == 10 and len(set(per_class)) > 1
    body = shipped.post("/score?model=mnist-cvae", content=npy(digits), headers=NPY_IN).json()
    classes = body["classes"]
    assert len(classes) == len(digits) and all(0 <= c < 10 for c in classes)
    assert body["thresholds"] == [per_class[c] for c in classes]
    assert body["anomalous"] == [
        s > t for s, t in zip(body["scores"], body["thresholds"], strict=True)
    ]


@pytest.mark.parametrize("model", MODELS)
def test_blank_and_near_blank_images_are_anomalous_and_real_ones_are_not_for_ink(
    shipped, digits, model
):
    blank = np.zeros((3, 1, 28, 28), np.float32)
    blank[1] += 0.02  # a dim, empty frame
    blank[2] = 1.0  # a white one
    body = shipped.post(f"/score?model={model}", content=npy(blank), headers=NPY_IN).json()
    assert body["anomalous"] == [True] * 3
    assert body["corrected"]["anomalous"] == [True] * 3
    low, high = body["ink_range"]
    assert low > 0.02 and high < 1.0
    held_out = digits if model != "fashion-vae" else None
    if held_out is not None:
        real = shipped.post(f"/score?model={model}", content=npy(held_out), headers=NPY_IN).json()
        assert all(low <= ink <= high for ink in real["ink"])
