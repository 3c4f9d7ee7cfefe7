"""Exports that must be refused: nothing written, an existing folder left as it was."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from tests.export.tiny_models import trained_model
from training import graphs
from training.export import export_model
from training.graphs import GraphError
from training.parity import ParityError

METRICS = {"recon_mse": 0.1}


@pytest.fixture
def existing(tmp_path):
    """A model folder already in place, which a refused export must not touch."""
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    return folder


def assert_untouched(folder):
    assert [p.name for p in folder.iterdir()] == ["manifest.json"]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name], "staging left behind"


def test_nan_producing_model_is_refused(splits, existing):
    model = trained_model("ae", splits, steps=2)
    with torch.no_grad():
        model.decoder.out.bias[0] = float("nan")  # one pixel of every decoded image is NaN
    with pytest.raises(ParityError, match="inf means a non-finite output"):
        export_model(model, splits, existing, metrics=METRICS)
    assert_untouched(existing)


def test_graph_that_differs_from_the_model_is_refused(splits, existing, monkeypatch):
    write_onnx = graphs.write_onnx

    def write_perturbed(module, example, signature, path):
        perturbed = copy.deepcopy(module)
        with torch.no_grad():
            for parameter in perturbed.parameters():
                parameter.add_(1e-2)
        write_onnx(perturbed, example, signature, path)

    monkeypatch.setattr(graphs, "write_onnx", write_perturbed)
    model = trained_model("vae", splits, steps=2)
    with pytest.raises(ParityError, match="encoder ONNX"):
        export_model(model, splits, existing, metrics=METRICS)
    assert_untouched(existing)


def test_tolerance_is_enforced_not_just_reported(splits, tmp_path, monkeypatch):
    """The same perturbation, 1e-7 of a weight, passes at 1e-4 and is refused at 1e-9."""
    write_onnx = graphs.write_onnx

    def write_nudged(module, example, signature, path):
        nudged = copy.deepcopy(module)
        with torch.no_grad():
            next(nudged.parameters()).add_(1e-7)
        write_onnx(nudged, example, signature, path)

    monkeypatch.setattr(graphs, "write_onnx", write_nudged)
    model = trained_model("ae", splits, steps=2)
    manifest = export_model(model, splits, tmp_path / "ok", metrics=METRICS, tolerance=1e-4)
    assert 0 < manifest.parity["onnx"] <= 1e-4
    with pytest.raises(ParityError):
        export_model(model, splits, tmp_path / "strict", metrics=METRICS, tolerance=1e-9)
    assert not (tmp_path / "strict").exists()


class NoisyEncoder(nn.Module):
    """Adds noise inside the graph: what an exported encoder must never do."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, image, label=None):
        latent = self.encoder(image, label)
        return latent + torch.randn_like(latent)


def test_random_operator_is_refused(splits, existing):
    model = trained_model("ae", splits, steps=2)
    model.encoder = NoisyEncoder(model.encoder)
    with pytest.raises(GraphError, match="random operators"):
        export_model(model, splits, existing, metrics=METRICS)
    assert_untouched(existing)


class BranchingDecoder(nn.Module):
    """Picks its output by a value computed from the data: no static graph can say that."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, latent, label=None):
        image = self.decoder(latent, label)
        if image.mean() > 0.5:
            return image
        return 1 - image


def test_model_without_a_static_graph_is_refused(splits, existing):
    model = trained_model("ae", splits, steps=2)
    model.decoder = BranchingDecoder(model.decoder)
    with pytest.raises(GraphError, match="cannot export decoder"):
        export_model(model, splits, existing, metrics=METRICS)
    assert_untouched(existing)
