"""Loss terms (per image, summed over pixels or units) and the corruption of a denoising AE."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from training.models import Autoencoder

RECONSTRUCTIONS = ("bce", "mse")


def reconstruction_loss(reconstruction: Tensor, target: Tensor, kind: str = "bce") -> Tensor:
    """Per-image loss [N], summed over pixels: Bernoulli NLL ("bce") or squared error ("mse")."""
    if kind == "bce":
        per_pixel = F.binary_cross_entropy(reconstruction, target, reduction="none")
    elif kind == "mse":
        per_pixel = F.mse_loss(reconstruction, target, reduction="none")
    else:
        raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, not {kind!r}")
    return per_pixel.flatten(1).sum(1)


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per image [N], in nats."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


def l1_sparsity(code: Tensor) -> Tensor:
    """Sum of |code| per image [N]."""
    return code.abs().sum(1)


def kl_sparsity(code: Tensor, rho: float, eps: float = 1e-6) -> Tensor:
    """sum_j KL(rho || rho_hat_j), rho_hat_j the batch's mean activation of unit j (a scalar).

    The codes must lie in (0, 1) (a sigmoid code), so rho_hat is a firing rate.
    """
    rho_hat = code.mean(0).clamp(eps, 1 - eps)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def corrupt(
    images: Tensor, kind: str, level: float, generator: torch.Generator | None = None
) -> Tensor:
    """Gaussian noise of std `level` (clipped to [0, 1]) or masking of a `level` fraction."""
    if kind == "gaussian":
        noise = torch.randn(images.shape, generator=generator, device=images.device)
        return (images + level * noise).clamp(0.0, 1.0)
    if kind == "masking":
        keep = torch.rand(images.shape, generator=generator, device=images.device) >= level
        return images * keep
    raise ValueError(f"noise_kind must be 'gaussian' or 'masking', not {kind!r}")


@dataclass
class LossTerms:
    """The batch's mean loss (to minimize) and its parts, all per image."""

    total: Tensor
    reconstruction: Tensor
    kl: Tensor
    sparsity: Tensor

    def as_floats(self) -> dict[str, float]:
        return {
            "loss": self.total.item(),
            "recon": self.reconstruction.item(),
            "kl": self.kl.item(),
            "sparsity": self.sparsity.item(),
        }


def autoencoder_loss(
    model: Autoencoder,
    images: Tensor,
    labels: Tensor,
    reconstruction: str = "bce",
    generator: torch.Generator | None = None,
) -> LossTerms:
    """The family's training objective on one batch.

    VAE / beta-VAE / CVAE: recon + beta * KL (the negative ELBO when beta is 1); DAE: recon of
    the clean image from a corrupted one; sparse AE: recon + weight * sparsity penalty.
    """
    inputs = images
    if model.family == "dae":
        inputs = corrupt(images, model.noise_kind, model.noise_level, generator)
    label = model.one_hot(labels)
    out = model(inputs, label, sample=True, generator=generator)
    recon = reconstruction_loss(out.reconstruction, images, reconstruction).mean()
    zero = recon.new_zeros(())
    kl = gaussian_kl(out.mean, out.logvar).mean() if model.variational else zero
    sparsity = _sparsity_penalty(model, out.code) if model.family == "sparse_ae" else zero
    total = recon + getattr(model, "beta", 1.0) * kl
    if model.family == "sparse_ae":
        total = total + model.sparsity_weight * sparsity
    return LossTerms(total, recon.detach(), kl.detach(), sparsity.detach())


def _sparsity_penalty(model: Autoencoder, code: Tensor) -> Tensor:
    if model.sparsity_kind == "kl":
        return kl_sparsity(code, model.sparsity_rho)
    return l1_sparsity(code).mean()
