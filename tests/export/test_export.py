"""Export round trip on small models: files, checker, signatures, parity, manifest, hashes."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from service.models.manifest import MODEL_FILES, Manifest, ReferenceSet
from training import graphs
from training.export import ExportError, verify_folder
from training.parity import DEFAULT_TOLERANCE

CARD_PICTURES = {"samples", "reconstructions", "latent_scatter", "latent_grid", "interpolation"}


def test_every_file_is_written(folder_and_model):
    folder, _ = folder_and_model
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    expected = {*MODEL_FILES, "manifest.json", "reference.json", "README.md"}
    assert expected <= names
    assert {f"card/{name}.png" for name in CARD_PICTURES} <= names
    assert not list(folder.parent.glob(".*")), "a staging folder was left behind"


def test_manifest_validates_and_lists_every_file_with_its_hash(folder_and_model):
    folder, model = folder_and_model
    manifest = Manifest.model_validate_json((folder / "manifest.json").read_text())
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(manifest.files) == on_disk - {"manifest.json"}
    for name, entry in manifest.files.items():
        data = (folder / name).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert entry.bytes == len(data)
    assert manifest.latent_dim == model.latent_dim
    assert manifest.conditional == model.conditional
    assert manifest.onnx_opset == graphs.ONNX_OPSET
    assert manifest.dataset.name == "generated"
    assert "recon_mse" in manifest.metrics
    assert manifest.training["model_options"] == '{"hidden": [32]}'
    assert verify_folder(folder) == manifest


def test_tampered_file_fails_verification(folder_and_model, tmp_path):
    folder, _ = folder_and_model
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    with open(copy / "decoder.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ExportError, match="decoder.onnx"):
        verify_folder(copy)


def test_onnx_graphs_pass_the_checker_with_the_designed_signatures(folder_and_model):
    folder, model = folder_and_model
    manifest = verify_folder(folder)
    for part in ("encoder", "decoder"):
        proto = onnx.load(str(folder / f"{part}.onnx"))
        onnx.checker.check_model(proto, full_check=True)
        signature = getattr(manifest, part)
        assert [i.name for i in proto.graph.input] == signature.inputs
        assert [o.name for o in proto.graph.output] == signature.outputs
        assert all(graphs.onnx_batch_dim(i) is None for i in proto.graph.input)
        assert not set(graphs.onnx_op_types(proto)) & graphs.RANDOM_ONNX_OPS
    expected_encoder = ["mean", "logvar"] if model.variational else ["latent"]
    assert manifest.encoder.outputs == expected_encoder
    label = ["label"] if model.conditional else []
    assert manifest.encoder.inputs == ["image", *label]
    assert manifest.decoder.inputs == ["latent", *label]
    assert manifest.decoder.outputs == ["image", "logits"]


@pytest.mark.parametrize("batch", [1, 5])
def test_torchscript_and_onnx_agree_with_pytorch(folder_and_model, splits, batch):
    folder, model = folder_and_model
    images = splits.test.images[-batch:]  # not the images export checked parity on
    label = model.one_hot(splits.test.labels[-batch:])
    latents = torch.randn(batch, model.latent_dim, generator=torch.Generator().manual_seed(3))
    cases = {
        "encoder": ((images, label) if model.conditional else (images,), model.encoder),
        "decoder": ((latents, label) if model.conditional else (latents,), model.decoder),
    }
    for part, (inputs, module) in cases.items():
        with torch.no_grad():
            expected = module(*inputs)
            if part == "decoder":  # the image, and the logits it is the sigmoid of
                expected = (expected, module.logits(*inputs))
        expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
        session = ort.InferenceSession(
            str(folder / f"{part}.onnx"), providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in session.get_inputs()]
        from_onnx = session.run(None, dict(zip(names, (t.numpy() for t in inputs), strict=True)))
        scripted = graphs.load_torchscript(folder / f"{part}.pt")
        with torch.no_grad():
            traced = scripted(*inputs)
        traced = [t.numpy() for t in (traced if isinstance(traced, tuple) else (traced,))]
        for want, onnx_out, ts_out in zip(expected, from_onnx, traced, strict=True):
            assert onnx_out.shape == want.shape and want.shape[0] == batch
            np.testing.assert_allclose(onnx_out, want, atol=DEFAULT_TOLERANCE, rtol=0)
            np.testing.assert_allclose(ts_out, onnx_out, atol=DEFAULT_TOLERANCE, rtol=0)


def test_parity_figures_are_recorded_within_tolerance(folder_and_model):
    folder, _ = folder_and_model
    parity = verify_folder(folder).parity
    assert parity["tolerance"] == DEFAULT_TOLERANCE
    assert 0 <= parity["torchscript"] <= parity["tolerance"]
    assert 0 <= parity["onnx"] <= parity["tolerance"]


def test_torchscript_graphs_hold_no_random_operator(folder_and_model):
    folder, _ = folder_and_model
    for part in ("encoder", "decoder"):
        kinds = graphs.torchscript_op_kinds(folder / f"{part}.pt")
        assert not [k for k in kinds if any(w in k for w in graphs.RANDOM_TORCH_OPS)]


def test_samplers_follow_the_family(exported):
    vae = verify_folder(exported["cvae"][0])
    ae = verify_folder(exported["ae"][0])
    assert vae.sampler.kind == "prior"
    assert ae.sampler.kind == "gaussian_mixture"
    assert all(len(mean) == ae.latent_dim for mean in ae.sampler.means)
    assert min(min(v) for v in ae.sampler.variances) > 0


def test_reference_set_maps_points_back_to_latents(folder_and_model, splits):
    folder, model = folder_and_model
    reference = ReferenceSet.model_validate_json((folder / "reference.json").read_text())
    assert len(reference.points) == len(reference.labels) == len(splits.test)
    assert reference.projection == "identity"  # the tiny models have 2-D latents
    latents = model.encode_mean(splits.test.images, model.one_hot(splits.test.labels)).numpy()
    mean = np.array(reference.projection_mean)
    components = np.array(reference.projection_components)
    back = mean + np.array(reference.points) @ components
    np.testing.assert_allclose(back, latents, atol=1e-4)
    class_means = np.array(reference.class_means)
    for c in range(len(splits.classes)):
        chosen = latents[splits.test.labels.numpy() == c]
        np.testing.assert_allclose(class_means[c], chosen.mean(axis=0), atol=1e-4)


def test_model_card_shows_metrics_parity_and_pictures(folder_and_model):
    folder, _ = folder_and_model
    card = (folder / "README.md").read_text()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "ratio of" in card and "PCA" in card
    assert "opset 18" in card and f"{manifest['parity']['onnx']:.2e}" in card
    for name in CARD_PICTURES:
        assert f"(card/{name}.png)" in card
