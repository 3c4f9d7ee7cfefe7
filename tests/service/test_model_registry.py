"""The registry loads good folders and refuses broken ones with a reason, in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.core.errors import UnknownModel
from service.core.settings import Settings
from service.models.backends import create_backend
from service.models.registry import load_registry


def registry_of(folder: Path, default: str = "tiny-vae"):
    return load_registry(folder, create_backend(Settings()), default)


def test_broken_folders_are_refused_and_others_serve(fixture_models):
    registry = registry_of(fixture_models)
    assert sorted(registry.models) == ["tiny-ae", "tiny-cvae", "tiny-vae"]
    reasons = {f.name: f.reason for f in registry.failed}
    assert reasons["bad-hash"] == "decoder.onnx does not match its sha256 in the manifest"
    assert reasons["missing-file"] == "encoder.pt is missing"
    assert "latent_dim" in reasons["bad-manifest"]
    with pytest.raises(UnknownModel, match="refused"):
        registry.get("bad-hash")
    assert registry.get(None).name == "tiny-vae"


def test_default_falls_back_to_a_loaded_model(fixture_models):
    assert registry_of(fixture_models, default="absent").default == "tiny-ae"


def copy_model(fixture_models: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models" / "tiny-vae"
    shutil.copytree(fixture_models / "tiny-vae", target)
    return target


def edit_manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (lambda f: (f / "manifest.json").unlink(), "no manifest.json"),
        (lambda f: (f / "manifest.json").write_text("{not json"), "invalid manifest.json"),
        (lambda f: (f / "encoder.onnx").write_bytes(b"x" * 10), "bytes; the manifest says"),
        (lambda f: edit_manifest(f, decoder={"inputs": ["z"], "outputs": ["image"]}), "contract"),
        (
            lambda f: edit_manifest(
                f,
                files={
                    **json.loads((f / "manifest.json").read_text())["files"],
                    "../escape": {"sha256": "0" * 64, "bytes": 1},
                },
            ),
            "outside the model folder",
        ),
    ],
    ids=["no manifest", "bad json", "wrong size", "bad signature", "path escape"],
)
def test_each_breakage_has_a_reason(fixture_models, tmp_path, breakage, reason):
    folder = copy_model(fixture_models, tmp_path)
    breakage(folder)
    registry = registry_of(folder.parent)
    assert not registry.models
    assert reason in registry.failed[0].reason


def test_onnx_graph_that_disagrees_with_its_manifest_is_refused(fixture_models, tmp_path):
    folder = copy_model(fixture_models, tmp_path)
    shutil.copy(fixture_models / "tiny-ae" / "encoder.onnx", folder / "encoder.onnx")
    manifest = json.loads((folder / "manifest.json").read_text())
    source = json.loads((fixture_models / "tiny-ae" / "manifest.json").read_text())
    manifest["files"]["encoder.onnx"] = source["files"]["encoder.onnx"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    registry = registry_of(folder.parent)
    assert "inputs" in registry.failed[0].reason and "outputs" in registry.failed[0].reason


def test_missing_model_directory_is_reported(tmp_path):
    registry = registry_of(tmp_path / "absent")
    assert not registry.models and "missing" in registry.failed[0].reason
