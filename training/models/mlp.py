"""Fully connected encoder and decoder; labels join as a one-hot vector."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn


def _stack(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """image [N,C,H,W] (+ one-hot label [N,K]) -> hidden layers -> head."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        hidden: list[int],
        num_classes: int,
        head: nn.Module,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = _stack([math.prod(image_shape) + num_classes, *hidden])
        self.head = head

    def forward(self, image: Tensor, label: Optional[Tensor] = None):  # noqa: UP045 (TorchScript)
        features = torch.flatten(image, 1)
        if label is not None:
            features = torch.cat([features, label], dim=1)
        return self.head(self.body(features))


class MLPDecoder(nn.Module):
    """latent [N,D] (+ one-hot label [N,K]) -> hidden layers -> sigmoid image [N,C,H,W].

    `logits` is the same pass without the final sigmoid: the numbers likelihoods are computed
    from, since a sigmoid's tails round to 0 or 1 differently on different CPUs."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        hidden: list[int],
        latent_dim: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.image_shape = list(image_shape)
        self.body = _stack([latent_dim + num_classes, *hidden])
        self.out = nn.Linear(hidden[-1], math.prod(image_shape))

    def logits(self, latent: Tensor, label: Optional[Tensor] = None) -> Tensor:  # noqa: UP045
        features = latent
        if label is not None:
            features = torch.cat([features, label], dim=1)
        return self.out(self.body(features)).reshape([-1] + self.image_shape)

    def forward(self, latent: Tensor, label: Optional[Tensor] = None) -> Tensor:  # noqa: UP045
        return torch.sigmoid(self.logits(latent, label))
