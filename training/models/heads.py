"""Encoder heads: how features become a code, and how codes are activated."""

from __future__ import annotations

from torch import Tensor, nn


class GaussianHead(nn.Module):
    """Features -> (mean, logvar) of a diagonal Gaussian posterior."""

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.mean = nn.Linear(in_features, latent_dim)
        self.logvar = nn.Linear(in_features, latent_dim)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        return self.mean(features), self.logvar(features)


CODE_ACTIVATIONS = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
}


def deterministic_head(in_features: int, latent_dim: int, activation: str = "linear") -> nn.Module:
    """Features -> latent, with an optional activation on the code (sparse AEs need one)."""
    if activation not in CODE_ACTIVATIONS:
        raise ValueError(f"code activation must be one of {sorted(CODE_ACTIVATIONS)}")
    return nn.Sequential(nn.Linear(in_features, latent_dim), CODE_ACTIVATIONS[activation]())
