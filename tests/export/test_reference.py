"""The reference set (latent map, class means) and the mixture sampler, on known latents."""

from __future__ import annotations

import numpy as np
import pytest

from training.reference import mixture_sampler, reference_set


def planar_latents(count: int = 300, dim: int = 5, seed: int = 0):
    """Latents on a 2-D plane inside `dim` dimensions, so a 2-D PCA map loses nothing."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, 2)))[0].T
    latents = rng.normal(size=(count, 2)) @ basis + rng.normal(size=dim)
    return latents, np.arange(count) % 3


def test_pca_map_points_map_back_to_their_latents():
    latents, labels = planar_latents()
    reference = reference_set(latents, labels, num_classes=3)
    assert reference.projection == "pca"
    components = np.array(reference.projection_components)
    np.testing.assert_allclose(components @ components.T, np.eye(2), atol=1e-4)
    back = np.array(reference.projection_mean) + np.array(reference.points) @ components
    np.testing.assert_allclose(back, latents, atol=1e-3)
    assert reference.labels == labels.tolist()


def test_two_dimensional_latents_map_through_the_identity():
    latents = np.random.default_rng(1).normal(size=(50, 2))
    reference = reference_set(latents, np.zeros(50, dtype=int), num_classes=1)
    assert reference.projection == "identity"
    np.testing.assert_allclose(np.array(reference.points), latents, atol=1e-5)


def test_large_sets_are_subsampled_and_class_means_use_every_latent():
    latents, labels = planar_latents(count=500)
    reference = reference_set(latents, labels, num_classes=3, max_points=120)
    assert len(reference.points) == len(reference.labels) == 120
    expected = [latents[labels == c].mean(axis=0) for c in range(3)]
    np.testing.assert_allclose(np.array(reference.class_means), expected, atol=1e-4)


def test_a_class_without_latents_is_an_error():
    latents, _ = planar_latents(count=30)
    with pytest.raises(ValueError, match="classes \\[2\\]"):
        reference_set(latents, np.arange(30) % 2, num_classes=3)


def test_mixture_sampler_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[-5.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    latents = np.concatenate([c + 0.1 * rng.normal(size=(200, 3)) for c in centres])
    sampler = mixture_sampler(latents, components=2, seed=0)
    assert sampler.kind == "gaussian_mixture"
    np.testing.assert_allclose(sorted(sampler.weights), [0.5, 0.5], atol=1e-6)
    found = np.array(sorted(sampler.means))
    np.testing.assert_allclose(found, centres, atol=0.1)
    np.testing.assert_allclose(np.array(sampler.variances), 0.01, rtol=0.5)
