"""Latent vectors: drawn from the prior or from a fitted mixture, and interpolated."""

from __future__ import annotations

import secrets
from typing import Literal

import numpy as np

from service.models.manifest import MixtureSampler, PriorSampler

Method = Literal["linear", "spherical"]
# Latents a model produces are O(1)..O(100); far larger ones overflow float32 inside a decoder
# (1e38 decodes to NaN), so latent values are refused beyond this bound.
LATENT_LIMIT = 1e6


def new_seed() -> int:
    return secrets.randbits(31)


def sample_posterior(mean: np.ndarray, logvar: np.ndarray, seed: int) -> np.ndarray:
    """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) from the seed (the reparameterization)."""
    eps = np.random.default_rng(seed).standard_normal(mean.shape)
    return (mean + np.exp(0.5 * logvar) * eps).astype(np.float32)


def sample(
    sampler: PriorSampler | MixtureSampler,
    latent_dim: int,
    n: int,
    *,
    seed: int,
    temperature: float = 1.0,
) -> np.ndarray:
    """`n` latents [n, latent_dim]; the same seed gives the same latents."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, latent_dim)) * temperature
    if isinstance(sampler, PriorSampler):
        return noise.astype(np.float32)
    weights = np.asarray(sampler.weights, dtype=np.float64)
    components = rng.choice(len(weights), size=n, p=weights / weights.sum())
    means = np.asarray(sampler.means, dtype=np.float64)[components]
    stds = np.sqrt(np.asarray(sampler.variances, dtype=np.float64))[components]
    return (means + stds * noise).astype(np.float32)


def interpolate(start: np.ndarray, end: np.ndarray, steps: int, method: Method) -> np.ndarray:
    """`steps` latents from `start` to `end` inclusive, [steps, D]."""
    t = np.linspace(0.0, 1.0, steps)
    a, b = start.astype(np.float64), end.astype(np.float64)
    if method == "spherical":
        return slerp(a, b, t).astype(np.float32)
    return ((1.0 - t[:, None]) * a + t[:, None] * b).astype(np.float32)


def slerp(start: np.ndarray, end: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (Shoemake) at the fractions `t` [T]: [T, D]; linear where the
    vectors are (anti)parallel or zero. The one slerp: /interpolate and the model cards' strips
    (training/plots.py) both draw with it."""
    a, b = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[:, None]
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0.0:
        return (1.0 - t) * a + t * b
    omega = np.arccos(np.clip(np.dot(a, b) / norms, -1.0, 1.0))
    sin_omega = np.sin(omega)
    if sin_omega < 1e-6:
        return (1.0 - t) * a + t * b
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / sin_omega
