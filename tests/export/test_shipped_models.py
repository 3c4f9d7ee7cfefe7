"""Every model shipped in exported_models/: loads in both runtimes, matches its manifest and
the zoo that built it, holds no randomness, and decodes its class means into sensible images."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from service.models.manifest import Manifest, ReferenceSet
from tests.conftest import EXPORTED_MODELS, SHIPPED
from tests.machine_paths import machine_paths_below
from training import graphs
from training.data import load_splits
from training.export import verify_folder
from training.zoo import load_zoo

ZOO = {model.name: model.config for model in load_zoo()}
ZOO_LIMIT_BYTES = 30 * 10**6


def test_the_zoo_ships_every_model_of_zoo_toml():
    assert sorted(ZOO) == sorted(SHIPPED)
    assert all((EXPORTED_MODELS / name / "manifest.json").is_file() for name in SHIPPED)


def test_the_zoo_stays_under_its_size_budget():
    total = sum(
        p.stat().st_size
        for name in SHIPPED
        for p in (EXPORTED_MODELS / name).rglob("*")
        if p.is_file()
    )
    assert total < ZOO_LIMIT_BYTES


@pytest.fixture(params=SHIPPED)
def shipped(request) -> tuple[str, Manifest]:
    return request.param, verify_folder(EXPORTED_MODELS / request.param)


def test_manifest_records_the_zoo_settings(shipped):
    name, manifest = shipped
    config = ZOO[name]
    for key in ("family", "architecture", "latent_dim", "dataset", "epochs", "seed"):
        assert manifest.training[key] == getattr(config, key), key
    assert (manifest.family, manifest.latent_dim) == (config.family, config.latent_dim)
    assert manifest.dataset.name == config.dataset
    assert manifest.parity["onnx"] <= manifest.parity["tolerance"]
    assert manifest.parity["torchscript"] <= manifest.parity["tolerance"]


def test_graphs_hold_no_random_operator(shipped):
    name, _ = shipped
    for part in ("encoder", "decoder"):
        ops = graphs.onnx_op_types(onnx.load(str(EXPORTED_MODELS / name / f"{part}.onnx")))
        assert not set(ops) & graphs.RANDOM_ONNX_OPS
        kinds = graphs.torchscript_op_kinds(EXPORTED_MODELS / name / f"{part}.pt")
        assert not [k for k in kinds if any(w in k for w in graphs.RANDOM_TORCH_OPS)]


def decode_class_means(name: str, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """The reference set's class means decoded by ONNX Runtime and by TorchScript."""
    folder = EXPORTED_MODELS / name
    reference = ReferenceSet.model_validate_json((folder / manifest.reference).read_text())
    latents = np.asarray(reference.class_means, dtype=np.float32)
    inputs = [latents]
    if manifest.conditional:
        inputs.append(np.eye(manifest.num_classes, dtype=np.float32))
    session = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    from_onnx = session.run(None, dict(zip(manifest.decoder.inputs, inputs, strict=True)))[0]
    with torch.no_grad():
        traced = graphs.load_torchscript(folder / "decoder.pt")(*map(torch.from_numpy, inputs))
    return from_onnx, traced[0].numpy()  # (image, logits)


def test_class_means_decode_to_images_in_range(shipped):
    name, manifest = shipped
    from_onnx, traced = decode_class_means(name, manifest)
    assert from_onnx.shape == (manifest.num_classes, *manifest.image.shape)
    low, high = manifest.image.value_range
    assert np.isfinite(from_onnx).all()
    assert from_onnx.min() >= low and from_onnx.max() <= high
    assert from_onnx.std() > 0.05, "decoded class means are blank"
    np.testing.assert_allclose(traced, from_onnx, atol=manifest.parity["tolerance"], rtol=0)


@pytest.mark.parametrize("batch", [1, 3])
def test_encoder_round_trip_in_both_runtimes(shipped, batch):
    name, manifest = shipped
    folder = EXPORTED_MODELS / name
    images, _ = decode_class_means(name, manifest)
    inputs = [images[:batch]]
    if manifest.conditional:
        inputs.append(np.eye(manifest.num_classes, dtype=np.float32)[:batch])
    session = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    from_onnx = session.run(None, dict(zip(manifest.encoder.inputs, inputs, strict=True)))
    with torch.no_grad():
        traced = graphs.load_torchscript(folder / "encoder.pt")(*map(torch.from_numpy, inputs))
    traced = traced if isinstance(traced, tuple) else (traced,)
    assert len(from_onnx) == len(manifest.encoder.outputs)
    for onnx_out, ts_out in zip(from_onnx, traced, strict=True):
        assert onnx_out.shape == (batch, manifest.latent_dim)
        np.testing.assert_allclose(
            ts_out.numpy(), onnx_out, atol=manifest.parity["tolerance"], rtol=0
        )


DIGIT_MODELS = [name for name, config in ZOO.items() if config.dataset == "mnist-test-only"]


@pytest.fixture(scope="module")
def digit_centroids(shared_mnist_root) -> np.ndarray:
    """Mean training image of each digit: a nearest-centroid classifier, cheap and honest."""
    train = load_splits("mnist-test-only", shared_mnist_root).train
    return np.stack([train.images[train.labels == d].mean(0).numpy() for d in range(10)])


@pytest.mark.realdata
@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_decoded_class_means_look_like_their_digits(name, digit_centroids):
    manifest = verify_folder(EXPORTED_MODELS / name)
    images, _ = decode_class_means(name, manifest)
    distances = ((images[:, None] - digit_centroids[None]) ** 2).sum(axis=(2, 3, 4))
    recognised = int((distances.argmin(axis=1) == np.arange(10)).sum())
    assert recognised >= 8, f"only {recognised} of 10 decoded class means look like their digit"


def test_cvae_samples_are_recognised_as_the_digit_asked_for():
    metrics = verify_folder(EXPORTED_MODELS / "mnist-cvae").metrics
    assert metrics["classifier_test_accuracy"] > 0.95
    assert metrics["sample_label_accuracy"] >= 0.97
    assert min(metrics[f"sample_label_accuracy_{d}"] for d in range(10)) > 0.7


def test_no_shipped_file_names_a_machine_path():
    assert [hit for name in SHIPPED for hit in machine_paths_below(EXPORTED_MODELS / name)] == []


def test_every_shipped_model_carries_its_anomaly_calibration(shipped):
    name, manifest = shipped
    calibration = manifest.calibration
    assert calibration is not None and calibration.split == "validation"
    assert calibration.images == manifest.dataset.sizes["validation"]
    assert calibration.score.name == ("neg_elbo" if manifest.variational else "reconstruction")
    assert calibration.corrected is not None  # every shipped model is trained with BCE
    other = "mnist-test-only" if name == "fashion-vae" else "fashion-mnist"
    for score in (calibration.score, calibration.corrected):
        figures = score.evaluation
        assert figures["test_false_alarm_rate"] <= 0.03
        assert figures["auroc_gaussian_noise_0.5"] > 0.99
        assert f"auroc_{other}" in figures
    assert (EXPORTED_MODELS / name / "card" / "scores.png").is_file()
    assert "## Anomaly scores" in (EXPORTED_MODELS / name / "README.md").read_text()


def test_fashion_vae_plain_score_fails_on_digits_and_the_corrected_one_does_not():
    """Nalisnick et al. (2019) on our own model: a finding the manifest must keep stating."""
    calibration = verify_folder(EXPORTED_MODELS / "fashion-vae").calibration
    assert calibration.score.evaluation["auroc_mnist-test-only"] < 0.5
    assert calibration.corrected.evaluation["auroc_mnist-test-only"] > 0.95
