"""Latents: prior, mixture and posterior sampling, linear and spherical interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from service.models.latents import interpolate, sample, sample_posterior, slerp
from service.models.manifest import MixtureSampler, PriorSampler


def test_prior_sampling_is_seeded_and_tempered():
    first = sample(PriorSampler(), 3, 4, seed=9)
    assert np.array_equal(first, sample(PriorSampler(), 3, 4, seed=9))
    assert not np.array_equal(first, sample(PriorSampler(), 3, 4, seed=10))
    np.testing.assert_allclose(sample(PriorSampler(), 3, 4, seed=9, temperature=0.5), first * 0.5)


def test_mixture_sampling_follows_the_components():
    mixture = MixtureSampler(
        weights=[0.2, 0.8], means=[[-10.0], [10.0]], variances=[[0.01], [0.01]]
    )
    drawn = sample(mixture, 1, 5000, seed=0)[:, 0]
    assert abs((drawn > 0).mean() - 0.8) < 0.03
    assert np.abs(np.abs(drawn) - 10).max() < 1


def test_posterior_sample_uses_logvar():
    mean, logvar = np.zeros((2000, 2)), np.log(np.full((2000, 2), 4.0))
    z = sample_posterior(mean, logvar, seed=1)
    assert abs(z.std() - 2.0) < 0.1


@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_interpolation_hits_both_ends(method):
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    path = interpolate(a, b, 5, method)
    assert path.shape == (5, 3)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)


def test_spherical_keeps_norms_of_unit_vectors_and_degrades_to_linear():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(
        np.linalg.norm(interpolate(a, b, 7, "spherical"), axis=1), 1, atol=1e-6
    )
    same = interpolate(a, a * 2, 3, "spherical")
    np.testing.assert_allclose(same, interpolate(a, a * 2, 3, "linear"), atol=1e-6)
    zero = interpolate(np.zeros(2), b, 3, "spherical")
    np.testing.assert_allclose(zero[1], [0, 0.5], atol=1e-6)


def test_the_cards_strips_and_interpolate_share_one_slerp():
    """training/plots.py draws the card's spherical strip with this very function."""
    import training.plots

    assert training.plots.slerp is slerp
    a, b = np.array([1.0, 0.0]), np.array([1.0, 1e-9])  # nearly parallel: linear, no NaN
    assert np.isfinite(slerp(a, b, np.linspace(0, 1, 5))).all()
    np.testing.assert_allclose(slerp(a, -a, np.array([0.5])), [[0.0, 0.0]], atol=1e-12)
