"""Convolutional encoder and decoder; labels join as constant image channels.

Each stage halves (encoder) or doubles (decoder) the height and width with a 4x4 kernel,
stride 2, padding 1, so the image sides must be divisible by 2 ** len(channels).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn


def label_planes(label: Tensor, like: Tensor) -> Tensor:
    """One-hot [N,K] -> [N,K,H,W] constant planes the size of `like` (export-friendly broadcast)."""
    return label[:, :, None, None] * torch.ones_like(like[:, :1])


def reduced_side(side: int, stages: int) -> int:
    factor = 2**stages
    if side % factor:
        raise ValueError(
            f"conv architecture: image side {side} must be divisible by {factor} "
            f"({stages} stride-2 stages); resize the images or use the mlp architecture"
        )
    return side // factor


class ConvEncoder(nn.Module):
    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: list[int],
        hidden: int,
        num_classes: int,
        head: nn.Module,
    ) -> None:
        super().__init__()
        in_channels, height, width = image_shape
        layers: list[nn.Module] = []
        previous = in_channels + num_classes
        for out in channels:
            layers += [nn.Conv2d(previous, out, 4, stride=2, padding=1), nn.ReLU()]
            previous = out
        self.convs = nn.Sequential(*layers)
        flat = previous * reduced_side(height, len(channels)) * reduced_side(width, len(channels))
        self.dense = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU())
        self.head = head

    def forward(self, image: Tensor, label: Optional[Tensor] = None):  # noqa: UP045 (TorchScript)
        features = image
        if label is not None:
            features = torch.cat([features, label_planes(label, image)], dim=1)
        return self.head(self.dense(torch.flatten(self.convs(features), 1)))


class ConvDecoder(nn.Module):
    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: list[int],
        hidden: int,
        latent_dim: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        out_channels, height, width = image_shape
        stages = len(channels)
        self.start_shape = [channels[-1], reduced_side(height, stages), reduced_side(width, stages)]
        self.dense = nn.Sequential(
            nn.Linear(latent_dim + num_classes, hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(self.start_shape)),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        widths = [channels[-1] + num_classes, *reversed(channels[:-1])]
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(fan_in, fan_out, 4, stride=2, padding=1), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(widths[-1], out_channels, 4, stride=2, padding=1))
        self.deconvs = nn.Sequential(*layers)

    def logits(self, latent: Tensor, label: Optional[Tensor] = None) -> Tensor:  # noqa: UP045
        """The image before its final sigmoid (see MLPDecoder)."""
        features = latent
        if label is not None:
            features = torch.cat([features, label], dim=1)
        grid = self.dense(features).reshape([-1] + self.start_shape)
        if label is not None:
            grid = torch.cat([grid, label_planes(label, grid)], dim=1)
        return self.deconvs(grid)

    def forward(self, latent: Tensor, label: Optional[Tensor] = None) -> Tensor:  # noqa: UP045
        return torch.sigmoid(self.logits(latent, label))
