"""Generated images and small models trained on them for a few steps."""

from __future__ import annotations

import torch

from training.data import ImageSplit, Splits
from training.losses import autoencoder_loss
from training.models import Autoencoder, build_model

torch.set_num_threads(2)

SHAPE = (1, 16, 16)
CLASSES = 3


def generated_split(count: int, seed: int) -> ImageSplit:
    """Noisy copies of one fixed random pattern per class: structure to learn, known labels."""
    generator = torch.Generator().manual_seed(99)
    prototypes = torch.rand((CLASSES, *SHAPE), generator=generator).round()
    generator.manual_seed(seed)
    labels = torch.arange(count) % CLASSES
    noise = 0.1 * torch.randn((count, *SHAPE), generator=generator)
    return ImageSplit((prototypes[labels] + noise).clamp(0, 1), labels)


def generated_splits() -> Splits:
    sizes = {"train": 240, "validation": 60, "test": 60}
    parts = [generated_split(n, seed) for seed, n in enumerate(sizes.values())]
    info = {
        "name": "generated",
        "source": "noisy random patterns made by the tests",
        "split": {k: f"seed {i}" for i, k in enumerate(sizes)},
        "sizes": sizes,
    }
    return Splits(*parts, classes=[f"pattern {i}" for i in range(CLASSES)], info=info)


def trained_model(family: str, splits: Splits, steps: int = 20) -> Autoencoder:
    torch.manual_seed(0)
    model = build_model(family, "mlp", 2, image_shape=SHAPE, num_classes=CLASSES, hidden=[32])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = splits.train.batches(40, shuffle=True, generator=torch.Generator().manual_seed(0))
    for _, (images, labels) in zip(range(steps), batches, strict=False):
        loss = autoencoder_loss(model, images, labels).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
