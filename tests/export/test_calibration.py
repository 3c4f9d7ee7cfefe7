"""Anomaly-score calibration at export: through the exported graphs, on the validation split,
deterministic, described in the manifest and the card; and no machine path in any file."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort

from service.models import scores
from service.models.manifest import Manifest
from tests.export.conftest import outlier_sets
from tests.export.tiny_models import trained_model
from tests.machine_paths import machine_paths_below
from training.export import export_model, reexport_folder, verify_folder


def read_manifest(folder) -> Manifest:
    return Manifest.model_validate_json((folder / "manifest.json").read_text())


def onnx_scores(folder, manifest: Manifest, name: str, images: np.ndarray) -> np.ndarray:
    """The score recomputed here from the exported graphs, the lowest over every class."""
    encoder = ort.InferenceSession(str(folder / "encoder.onnx"))
    decoder = ort.InferenceSession(str(folder / "decoder.onnx"))
    labels = [{}]
    if manifest.conditional:
        labels = [
            {"label": np.eye(manifest.num_classes, dtype=np.float32)[[c] * len(images)]}
            for c in range(manifest.num_classes)
        ]
    per_label = []
    for label in labels:
        out = encoder.run(None, {"image": images, **label})
        recon, logits = decoder.run(["image", "logits"], {"latent": out[0], **label})
        logvar = out[1] if manifest.variational else None
        per_label.append(scores.compute(name, images, recon, out[0], logvar, logits=logits))
    return np.min(per_label, axis=0)


def test_manifest_names_each_score_and_its_held_out_figures(folder_and_model, splits):
    folder, model = folder_and_model
    calibration = read_manifest(folder).calibration
    plain = "neg_elbo" if model.variational else "reconstruction"
    assert calibration.split == "validation" and calibration.images == len(splits.val)
    assert (calibration.score.name, calibration.corrected.name) == (plain, f"{plain}_minus_entropy")
    for score in (calibration.score, calibration.corrected):
        assert score.unit == "nats" and score.threshold_quantile == 0.99
        assert score.levels == scores.quantile_levels().tolist()
        assert set(score.evaluation) == {
            "test_false_alarm_rate",
            "auroc_inverted",
            "detected_inverted",
            "auroc_gaussian_noise_0.5",
            "detected_gaussian_noise_0.5",
        }
        assert all(0.0 <= value <= 1.0 for value in score.evaluation.values())


def test_threshold_is_the_validation_quantile_of_the_served_score(folder_and_model, splits):
    folder, _ = folder_and_model
    manifest = read_manifest(folder)
    validation, test = splits.val.images.numpy(), splits.test.images.numpy()
    for score in (manifest.calibration.score, manifest.calibration.corrected):
        values = onnx_scores(folder, manifest, score.name, validation)
        np.testing.assert_allclose(score.threshold, np.quantile(values, 0.99), rtol=1e-5)
        np.testing.assert_allclose(score.quantiles, np.quantile(values, score.levels), rtol=1e-5)
        percentiles = scores.percentiles(values, score.levels, score.quantiles)
        assert np.isclose(np.median(percentiles), 50.0, atol=2.0)
        held_out = onnx_scores(folder, manifest, score.name, test)
        assert score.evaluation["test_false_alarm_rate"] == (held_out > score.threshold).mean()


def test_card_reports_the_scores_and_draws_their_histogram(folder_and_model):
    folder, _ = folder_and_model
    card = (folder / "README.md").read_text()
    assert "## Anomaly scores" in card
    assert "false-alarm rate on the test split" in card and "AUROC against inverted" in card
    assert "![scores](card/scores.png)" in card
    assert (folder / "card" / "scores.png").read_bytes().startswith(b"\x89PNG")


def test_exported_files_name_no_machine_path(folder_and_model):
    folder, _ = folder_and_model
    assert machine_paths_below(folder) == []


def test_export_is_deterministic_down_to_the_onnx_bytes(exported, splits, tmp_path):
    folder, _ = exported["ae"]
    again = tmp_path / folder.name
    export_model(
        trained_model("ae", splits),
        splits,
        again,
        metrics={"recon_mse": 0.0},
        training={"steps": 20, "model_options": {"hidden": [32]}},
        outliers=outlier_sets(splits),
    )
    for graph in ("encoder.onnx", "decoder.onnx"):
        assert (again / graph).read_bytes() == (folder / graph).read_bytes(), graph
    assert read_manifest(again).calibration == read_manifest(folder).calibration


def test_reexporting_a_folder_from_its_own_weights_gives_the_export_again(
    exported, splits, tmp_path
):
    folder, _ = exported["cvae"]
    old = tmp_path / folder.name
    shutil.copytree(folder, old)
    manifest = read_manifest(folder)

    again = reexport_folder(old, splits=splits, outliers=outlier_sets(splits))
    assert again == verify_folder(old)
    assert again.calibration == manifest.calibration
    assert again.parity == manifest.parity
    keep = ("name", "description", "metrics", "training", "encoder", "decoder", "reference")
    assert {k: getattr(again, k) for k in keep} == {k: getattr(manifest, k) for k in keep}
    changed = {f for f in manifest.files if again.files[f] != manifest.files[f]}
    # The card names the export's date; TorchScript archives are not byte-reproducible (their
    # parity figures above are equal); every ONNX graph, picture and reference set is.
    assert changed <= {"README.md", "encoder.pt", "decoder.pt"}, changed
