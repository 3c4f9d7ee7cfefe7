"""A small digit classifier that judges generated images: does a sample look like its label?

A conditional model is only useful if asking for class c yields something recognisable as c,
so the zoo trains this classifier on the same training split, checks it on the test split,
and reports how often it names the requested class of the CVAE's samples.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.data import ImageSplit
from training.models import Autoencoder


def small_cnn(channels: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.LazyLinear(64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
    )


def train_classifier(
    train: ImageSplit, num_classes: int, epochs: int = 4, seed: int = 0, batch_size: int = 64
) -> nn.Module:
    """Fit `small_cnn` on `train` with Adam; seeded, so the same split gives the same model."""
    torch.manual_seed(seed)
    model = small_cnn(train.images.shape[1], num_classes)
    model(train.images[:1])  # materialise the lazy layer before the optimizer sees it
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    shuffle = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for images, labels in train.batches(batch_size, shuffle=True, generator=shuffle):
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def predict(classifier: nn.Module, images: Tensor, batch_size: int = 1000) -> Tensor:
    return torch.cat(
        [
            classifier(images[i : i + batch_size]).argmax(1)
            for i in range(0, len(images), batch_size)
        ]
    )


def accuracy(classifier: nn.Module, split: ImageSplit) -> float:
    return (predict(classifier, split.images) == split.labels).float().mean().item()


@torch.no_grad()
def sample_label_accuracy(
    model: Autoencoder, classifier: nn.Module, per_class: int = 200, seed: int = 0
) -> dict[int, float]:
    """For each class c: the fraction of prior samples decoded with label c classified as c."""
    if not model.conditional:
        raise ValueError("sample_label_accuracy needs a conditional model")
    generator = torch.Generator().manual_seed(seed)
    scores = {}
    for c in range(model.num_classes):
        latents = torch.randn(per_class, model.latent_dim, generator=generator)
        labels = torch.full((per_class,), c, dtype=torch.long)
        images = model.decode(latents, model.one_hot(labels))
        scores[c] = (predict(classifier, images) == c).float().mean().item()
    return scores
