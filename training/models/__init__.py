"""Model families and architectures, chosen by name: `build_model(family, architecture, ...)`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from training.models.base import Autoencoder, ForwardOutput, reparameterize
from training.models.conv import ConvDecoder, ConvEncoder
from training.models.families import FAMILIES, Family
from training.models.heads import GaussianHead, deterministic_head
from training.models.mlp import MLPDecoder, MLPEncoder

# Architecture options and their defaults; any family accepts these.
ARCHITECTURE_DEFAULTS: dict[str, dict] = {
    "mlp": {"hidden": [512, 256]},
    "conv": {"channels": [32, 64], "hidden": 256},
}


def _head(variational: bool, features: int, latent_dim: int, code_activation: str | None):
    if variational:
        return GaussianHead(features, latent_dim)
    return deterministic_head(features, latent_dim, code_activation or "linear")


def _build_mlp(spec, latent_dim, image_shape, num_classes, arch, code_activation):
    hidden = list(arch["hidden"])
    if not hidden:
        raise ValueError("mlp architecture needs at least one hidden layer")
    head = _head(spec.variational, hidden[-1], latent_dim, code_activation)
    encoder = MLPEncoder(image_shape, hidden, num_classes, head)
    decoder = MLPDecoder(image_shape, list(reversed(hidden)), latent_dim, num_classes)
    return encoder, decoder


def _build_conv(spec, latent_dim, image_shape, num_classes, arch, code_activation):
    channels, hidden = list(arch["channels"]), int(arch["hidden"])
    head = _head(spec.variational, hidden, latent_dim, code_activation)
    encoder = ConvEncoder(image_shape, channels, hidden, num_classes, head)
    decoder = ConvDecoder(image_shape, channels, hidden, latent_dim, num_classes)
    return encoder, decoder


ARCHITECTURES: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {
    "mlp": _build_mlp,
    "conv": _build_conv,
}


def build_model(
    family: str,
    architecture: str,
    latent_dim: int,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 0,
    **options,
) -> Autoencoder:
    """Build an autoencoder of `family` ("ae", "vae", "beta_vae", "cvae", "dae", "sparse_ae")
    in `architecture` ("mlp", "conv").

    `options` holds the family's options (see `FAMILIES[family].defaults`: beta, noise kind
    and level, sparsity kind/weight/rho/code activation) and the architecture's (`hidden` for
    mlp; `channels` and `hidden` for conv). `num_classes` is required by "cvae" and ignored
    by the unconditional families, which take no label input.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)}")
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}"
        )
    if latent_dim < 1:
        raise ValueError("latent_dim must be at least 1")
    spec = FAMILIES[family]
    if spec.conditional and num_classes < 2:
        raise ValueError(f"family {family!r} is conditional: num_classes must be at least 2")
    arch_options = {**ARCHITECTURE_DEFAULTS[architecture]}
    for name in ARCHITECTURE_DEFAULTS[architecture]:
        if name in options:
            arch_options[name] = options.pop(name)
    family_options = spec.resolve_options(options)
    label_classes = num_classes if spec.conditional else 0
    image_shape = tuple(int(s) for s in image_shape)
    encoder, decoder = ARCHITECTURES[architecture](
        spec,
        latent_dim,
        image_shape,
        label_classes,
        arch_options,
        family_options.get("code_activation"),
    )
    return Autoencoder(
        encoder,
        decoder,
        family=family,
        architecture=architecture,
        latent_dim=latent_dim,
        image_shape=image_shape,
        num_classes=label_classes,
        variational=spec.variational,
        options={**family_options, **arch_options},
    )


def model_kwargs(model: Autoencoder) -> dict:
    """The `build_model` arguments that rebuild `model` (stored in every checkpoint)."""
    return {
        "family": model.family,
        "architecture": model.architecture,
        "latent_dim": model.latent_dim,
        "image_shape": list(model.image_shape),
        "num_classes": model.num_classes,
        **model.options,
    }


__all__ = [
    "ARCHITECTURES",
    "Autoencoder",
    "FAMILIES",
    "Family",
    "ForwardOutput",
    "build_model",
    "model_kwargs",
    "reparameterize",
]
