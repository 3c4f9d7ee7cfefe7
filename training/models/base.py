"""The `Autoencoder` container: an encoder, a decoder and what describes them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class ForwardOutput:
    """What one pass through an autoencoder produced.

    `code` is the latent the decoder saw: a sample for variational models (or the mean when
    not sampling), the deterministic latent otherwise.
    """

    reconstruction: Tensor
    code: Tensor
    mean: Tensor | None = None
    logvar: Tensor | None = None


def reparameterize(
    mean: Tensor, logvar: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I)."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * eps


class Autoencoder(nn.Module):
    """An encoder and a decoder, plus the facts export and evaluation need about them.

    The encoder and decoder contain no randomness, so each exports as it is; sampling z
    (the reparameterization) happens here, in `forward`, which is used only for training
    and evaluation.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        family: str,
        architecture: str,
        latent_dim: int,
        image_shape: tuple[int, int, int],
        num_classes: int,
        variational: bool,
        options: dict,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.family = family
        self.architecture = architecture
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.variational = variational
        self.conditional = num_classes > 0
        self.options = dict(options)
        for name, value in options.items():
            setattr(self, name, value)

    def forward(
        self,
        image: Tensor,
        label: Tensor | None = None,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> ForwardOutput:
        if self.variational:
            mean, logvar = self.encoder(image, label)
            code = reparameterize(mean, logvar, generator) if sample else mean
            return ForwardOutput(self.decoder(code, label), code, mean, logvar)
        code = self.encoder(image, label)
        return ForwardOutput(self.decoder(code, label), code)

    @torch.no_grad()
    def encode_mean(self, image: Tensor, label: Tensor | None = None) -> Tensor:
        """The deterministic code: the posterior mean, or the latent of a plain AE."""
        out = self.encoder(image, label)
        return out[0] if self.variational else out

    @torch.no_grad()
    def decode(self, latent: Tensor, label: Tensor | None = None) -> Tensor:
        return self.decoder(latent, label)

    def one_hot(self, labels: Tensor) -> Tensor | None:
        """The decoder's label input for a conditional model; None otherwise."""
        if not self.conditional:
            return None
        return nn.functional.one_hot(labels.long(), self.num_classes).float()

    def describe(self) -> str:
        kind = "variational" if self.variational else "deterministic"
        cond = f", conditioned on {self.num_classes} classes" if self.conditional else ""
        return (
            f"{self.family} ({self.architecture}, {kind}{cond}), latent {self.latent_dim}, "
            f"image {self.image_shape}"
        )
