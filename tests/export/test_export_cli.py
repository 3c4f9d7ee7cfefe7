"""`latentserve-train export` from a real training checkpoint, through the CLI dispatch."""

from __future__ import annotations

import copy

import numpy as np
import torch
from PIL import Image

from tests.export.tiny_models import generated_split
from training import graphs
from training.cli import main as cli_main
from training.export import verify_folder
from training.train import TrainConfig, train


def write_image_folder(root, count: int = 90) -> None:
    split = generated_split(count, seed=5)
    for index, (image, label) in enumerate(zip(split.images, split.labels, strict=True)):
        folder = root / f"pattern-{int(label)}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image[0].numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")


def test_cli_exports_a_training_checkpoint(tmp_path, capsys):
    write_image_folder(tmp_path / "images")
    config = TrainConfig(
        dataset="image-folder",
        data_root=str(tmp_path / "images"),
        image_shape=[1, 16, 16],
        family="vae",
        architecture="mlp",
        latent_dim=3,
        model_options={"hidden": [32]},
        epochs=2,
        batch_size=16,
        output_dir=str(tmp_path / "runs"),
        progress=False,
        iw_samples=5,
        threads=2,
    )
    result = train(config)
    out = tmp_path / "models" / "tiny-vae"
    assert cli_main(["export", str(result.best_checkpoint), str(out)]) == 0
    assert "exported tiny-vae" in capsys.readouterr().out
    manifest = verify_folder(out)
    assert manifest.metrics == result.test_metrics  # the run's metrics.json, not new numbers
    assert manifest.dataset.name == "image-folder:images"
    assert manifest.classes == ["pattern-0", "pattern-1", "pattern-2"]
    assert manifest.training["latent_dim"] == 3 and "data_root" not in manifest.training
    assert manifest.training["best_epoch"] in (1, 2)


def test_cli_refuses_with_a_message_and_writes_nothing(tmp_path, capsys, monkeypatch):
    write_onnx = graphs.write_onnx

    def write_perturbed(module, example, signature, path):
        perturbed = copy.deepcopy(module)
        with torch.no_grad():
            next(perturbed.parameters()).add_(0.1)
        write_onnx(perturbed, example, signature, path)

    monkeypatch.setattr(graphs, "write_onnx", write_perturbed)
    write_image_folder(tmp_path / "images")
    config = TrainConfig(
        dataset="image-folder",
        data_root=str(tmp_path / "images"),
        image_shape=[1, 16, 16],
        family="ae",
        architecture="mlp",
        latent_dim=2,
        model_options={"hidden": [16]},
        epochs=1,
        batch_size=16,
        output_dir=str(tmp_path / "runs"),
        progress=False,
        threads=2,
    )
    result = train(config)
    out = tmp_path / "models" / "strict"
    assert cli_main(["export", str(result.best_checkpoint), str(out)]) == 1
    assert "export refused: exported graphs differ" in capsys.readouterr().err
    assert not out.exists() and list((tmp_path / "models").iterdir()) == []
