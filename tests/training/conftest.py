"""Small generated datasets, so the unit tests run in seconds without real data."""

from __future__ import annotations

import pytest
import torch

from training.data import ImageSplit, Splits
from training.train import TrainConfig

torch.set_num_threads(1)


def prototype_images(count: int, seed: int, shape=(1, 8, 8), classes: int = 3):
    """Noisy copies of `classes` fixed random patterns: learnable structure, known labels."""
    generator = torch.Generator().manual_seed(1234)
    prototypes = torch.rand((classes, *shape), generator=generator).round()
    generator.manual_seed(seed)
    labels = torch.randint(0, classes, (count,), generator=generator)
    noise = 0.1 * torch.randn((count, *shape), generator=generator)
    return (prototypes[labels] + noise).clamp(0, 1), labels


def make_splits(shape=(1, 8, 8), classes: int = 3, train: int = 192) -> Splits:
    parts = [
        ImageSplit(*prototype_images(n, seed, shape, classes))
        for n, seed in ((train, 0), (64, 1), (64, 2))
    ]
    info = {
        "name": "prototypes",
        "source": "generated in tests",
        "split": {"train": "seed 0", "validation": "seed 1", "test": "seed 2"},
        "sizes": {"train": train, "validation": 64, "test": 64},
    }
    return Splits(*parts, classes=[f"class {i}" for i in range(classes)], info=info)


@pytest.fixture
def tiny_splits() -> Splits:
    return make_splits()


@pytest.fixture
def tiny_config(tmp_path) -> TrainConfig:
    return TrainConfig(
        dataset="prototypes",
        family="vae",
        architecture="mlp",
        latent_dim=2,
        model_options={"hidden": [32]},
        epochs=2,
        batch_size=32,
        learning_rate=3e-3,
        output_dir=str(tmp_path / "runs"),
        progress=False,
        iw_samples=10,
        threads=1,
    )
