"""The shipped models' anomaly scores do not depend on how a CPU kernel rounds the tails of the
decoder's sigmoid: they come from the decoder's logits, equal a float64 computation of the
Bernoulli likelihood, and stay put when every tiny probability is flushed to zero."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch.nn import functional as F

from service.models import scores
from tests.conftest import EXPORTED_MODELS
from training.export import verify_folder
from training.train import load_data
from training.zoo import load_zoo

pytestmark = pytest.mark.realdata

ZOO = {entry.name: entry.config for entry in load_zoo()}
IMAGES = 300  # validation images per model (times the classes of the conditional model)


@pytest.fixture(scope="module", params=sorted(ZOO))
def outputs(request):
    """The graphs' outputs on the model's own validation images (under every class)."""
    name = request.param
    manifest = verify_folder(EXPORTED_MODELS / name)
    images = load_data(ZOO[name]).val.images[:IMAGES].numpy()
    labels = [{}]
    if manifest.conditional:
        eye = np.eye(manifest.num_classes, dtype=np.float32)
        labels = [{"label": eye[[c] * len(images)]} for c in range(manifest.num_classes)]
    sessions = {
        part: ort.InferenceSession(str(EXPORTED_MODELS / name / f"{part}.onnx"))
        for part in ("encoder", "decoder")
    }
    runs = []
    for label in labels:
        encoded = sessions["encoder"].run(manifest.encoder.outputs, {"image": images, **label})
        decoded = sessions["decoder"].run(manifest.decoder.outputs, {"latent": encoded[0], **label})
        runs.append(
            {
                **dict(zip(manifest.encoder.outputs, encoded, strict=True)),
                **dict(zip(manifest.decoder.outputs, decoded, strict=True)),
            }
        )
    return manifest, images, runs


def served_way(manifest, images, run, image=None, logits=None) -> np.ndarray:
    """The score as /score computes it, from these outputs (optionally replaced)."""
    mean = run.get("mean", run.get("latent"))
    return scores.compute(
        manifest.calibration.score.name,
        images,
        run["image"] if image is None else image,
        mean,
        run.get("logvar"),
        logits=run["logits"] if logits is None else logits,
    )


def test_every_shipped_decoder_answers_its_logits_and_export_checked_the_scores(outputs):
    manifest, _, runs = outputs
    assert manifest.decoder.outputs == ["image", "logits"]
    for run in runs:
        sigmoid = 0.5 * (1 + np.tanh(run["logits"] / 2))
        np.testing.assert_allclose(run["image"], sigmoid, atol=1e-6)
    assert manifest.parity["score_onnx"] <= manifest.parity["score_tolerance"] == 0.01
    assert manifest.parity["score_torchscript"] <= manifest.parity["score_tolerance"]


def test_scores_equal_the_float64_likelihood_of_the_logits(outputs):
    manifest, images, runs = outputs
    target = torch.from_numpy(images).double().flatten(1)
    for run in runs:
        logits = torch.from_numpy(run["logits"]).double().flatten(1)
        exact = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
        if "logvar" in run:
            mean, logvar = (torch.from_numpy(run[k]).double() for k in ("mean", "logvar"))
            exact += 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1)
        np.testing.assert_allclose(served_way(manifest, images, run), exact.numpy(), atol=1e-9)


def test_flushing_tiny_probabilities_to_zero_moves_no_score(outputs):
    """Some CPU kernels return exactly 0 for a sigmoid below ~3e-8: nothing may follow."""
    manifest, images, runs = outputs
    for run in runs:
        flushed = np.where(run["image"] < 1e-6, 0.0, run["image"]).astype(np.float32)
        assert (flushed == 0).any()
        change = served_way(manifest, images, run, image=flushed) - served_way(
            manifest, images, run
        )
        assert np.abs(change).max() <= 0.01


def test_logits_rounded_differently_move_no_score_by_more_than_a_hundredth(outputs):
    """Kernels differ in the last bits of the logits too (float32 rounding, summation order)."""
    manifest, images, runs = outputs
    rng = np.random.default_rng(0)
    for run in runs:
        wobble = 1 + rng.choice([-1.0, 1.0], run["logits"].shape) * 4 * np.finfo(np.float32).eps
        moved = served_way(
            manifest, images, run, logits=(run["logits"] * wobble).astype(np.float32)
        )
        assert np.abs(moved - served_way(manifest, images, run)).max() <= 0.01
