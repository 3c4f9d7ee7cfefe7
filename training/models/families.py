"""The six model families: what each is, and the options each accepts (with defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    variational: bool = False
    conditional: bool = False
    defaults: dict = field(default_factory=dict)

    def resolve_options(self, options: dict) -> dict:
        """Defaults overridden by `options`; unknown option names are an error."""
        unknown = set(options) - set(self.defaults)
        if unknown:
            allowed = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(
                f"family {self.name!r} takes no option {', '.join(sorted(unknown))} "
                f"(allowed: {allowed})"
            )
        resolved = {**self.defaults, **options}
        if self.name == "sparse_ae":
            resolved = _sparse_defaults(resolved)
        return resolved


def _sparse_defaults(options: dict) -> dict:
    if options["sparsity_kind"] not in ("l1", "kl"):
        raise ValueError("sparsity_kind must be 'l1' or 'kl'")
    if options["code_activation"] is None:
        # KL sparsity compares firing rates, so codes must lie in (0, 1); L1 wants exact zeros.
        options["code_activation"] = "sigmoid" if options["sparsity_kind"] == "kl" else "relu"
    return options


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("ae", "plain autoencoder: x -> z -> x'"),
        Family(
            "vae",
            "variational autoencoder, KL to N(0, I)",
            variational=True,
            defaults={"beta": 1.0},
        ),
        Family(
            "beta_vae",
            "VAE with the KL term weighted by beta",
            variational=True,
            defaults={"beta": 4.0},
        ),
        Family(
            "cvae",
            "conditional VAE: encoder and decoder see the class",
            variational=True,
            conditional=True,
            defaults={"beta": 1.0},
        ),
        Family(
            "dae",
            "denoising autoencoder: corrupted input, clean target",
            defaults={"noise_kind": "gaussian", "noise_level": 0.5},
        ),
        Family(
            "sparse_ae",
            "autoencoder with a sparsity penalty on the code",
            defaults={
                "sparsity_kind": "l1",
                "sparsity_weight": 1e-3,
                "sparsity_rho": 0.05,
                "code_activation": None,
            },
        ),
    )
}
