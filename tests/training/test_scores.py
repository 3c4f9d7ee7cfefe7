"""service.models.scores (numpy, served) computes what training.losses (torch, trained)
computes, and its calibration helpers map scores to percentiles and separate sets as stated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.models import scores
from training.losses import gaussian_kl, reconstruction_loss

RNG = np.random.default_rng(0)
IMAGES = RNG.random((5, 1, 6, 6)).astype(np.float32)
RECON = RNG.random((5, 1, 6, 6)).astype(np.float32)


@pytest.mark.parametrize("kind", ["bce", "mse"])
def test_reconstruction_error_is_the_training_loss(kind):
    expected = reconstruction_loss(torch.from_numpy(RECON), torch.from_numpy(IMAGES), kind)
    np.testing.assert_allclose(
        scores.reconstruction_error(IMAGES, RECON, kind), expected.numpy(), rtol=1e-5
    )


def test_bce_clamps_its_logarithms_as_torch_does():
    saturated = np.zeros_like(RECON)
    saturated[:, :, :3] = 1.0  # log(0) on every pixel where the target disagrees
    expected = reconstruction_loss(torch.from_numpy(saturated), torch.from_numpy(IMAGES))
    got = scores.reconstruction_error(IMAGES, saturated)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5)


def test_kl_is_the_training_kl():
    mean, logvar = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    expected = gaussian_kl(torch.from_numpy(mean), torch.from_numpy(logvar)).numpy()
    np.testing.assert_allclose(scores.gaussian_kl(mean, logvar), expected, rtol=1e-10)


def test_neg_elbo_adds_the_kl_to_the_reconstruction_term():
    mean, logvar = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    neg_elbo = scores.compute("neg_elbo", IMAGES, RECON, mean, logvar)
    np.testing.assert_allclose(
        neg_elbo, scores.reconstruction_error(IMAGES, RECON) + scores.gaussian_kl(mean, logvar)
    )
    with pytest.raises(ValueError, match="mean and logvar"):
        scores.compute("neg_elbo", IMAGES, RECON)


def test_the_entropy_is_the_floor_of_the_bce():
    entropy = scores.bernoulli_entropy(IMAGES)
    np.testing.assert_allclose(entropy, scores.reconstruction_error(IMAGES, IMAGES), rtol=1e-5)
    assert (scores.compute("reconstruction_minus_entropy", IMAGES, RECON) > 0).all()
    binary = (IMAGES > 0.5).astype(np.float32)
    assert np.array_equal(scores.bernoulli_entropy(binary), np.zeros(len(binary)))


def test_the_correction_is_for_bernoulli_likelihoods_only():
    with pytest.raises(ValueError, match="bce"):
        scores.compute("reconstruction_minus_entropy", IMAGES, RECON, reconstruction="mse")
    with pytest.raises(ValueError, match="unknown score"):
        scores.compute("loudness", IMAGES, RECON)


def test_percentiles_follow_the_calibrated_distribution():
    validation = RNG.normal(size=10_000)
    levels = scores.quantile_levels()
    values = scores.quantiles(validation, levels)
    assert levels[0] == 0.0 and levels[-1] == 1.0 and 0.99 in levels and 0.999 in levels
    got = scores.percentiles(np.array([-99.0, 0.0, 1.6449, 99.0]), levels, values)
    np.testing.assert_allclose(got, [0.0, 50.0, 95.0, 100.0], atol=1.0)
    fresh = RNG.normal(size=2000)
    assert abs((scores.percentiles(fresh, levels, values) < 10).mean() - 0.10) < 0.03


def test_percentiles_of_tied_quantiles_take_the_highest_level():
    levels, values = [0.0, 0.5, 0.9, 1.0], [0.0, 1.0, 1.0, 2.0]
    assert scores.percentiles(np.array([1.0]), levels, values)[0] == 90.0


def test_auroc_counts_how_often_outliers_outscore_inliers():
    inliers = np.array([1.0, 2.0, 3.0])
    assert scores.auroc(inliers, inliers + 10) == 1.0
    assert scores.auroc(inliers, inliers - 10) == 0.0
    assert scores.auroc(inliers, inliers) == 0.5  # ties count half
    assert scores.auroc(inliers, np.array([2.5])) == pytest.approx(2 / 3)


def test_anomalous_means_above_the_threshold():
    assert scores.anomalous(np.array([0.9, 1.0, 1.1]), 1.0).tolist() == [False, False, True]


def test_conditional_scores_keep_the_lowest_class():
    tiled, labels = scores.every_class(IMAGES[:2], 3)
    assert tiled.shape == (6, 1, 6, 6) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.array_equal(tiled[4], IMAGES[0])
    per_row = np.array([5.0, 1.0, 2.0, 7.0, 3.0, 0.5])
    assert scores.lowest_over_classes(per_row, 2).tolist() == [2.0, 0.5]


# ---- pixel maps


def test_a_bernoulli_map_is_the_per_pixel_deviance_and_sums_to_the_corrected_score():
    logits = RNG.normal(scale=6.0, size=IMAGES.shape)
    recon = 1 / (1 + np.exp(-logits))
    maps = scores.pixel_maps(IMAGES, recon, "bce", logits)
    assert maps.shape == (5, 6, 6) and maps.min() >= -1e-12
    corrected = scores.compute("reconstruction_minus_entropy", IMAGES, recon, logits=logits)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), corrected, rtol=1e-10)
    perfect = scores.pixel_maps(IMAGES, IMAGES, "bce", np.log(IMAGES) - np.log1p(-IMAGES))
    np.testing.assert_allclose(perfect, 0.0, atol=1e-9)  # a gray pixel reproduced costs nothing


def test_a_squared_error_map_sums_over_channels():
    rgb, recon = RNG.random((2, 3, 4, 4)), RNG.random((2, 3, 4, 4))
    np.testing.assert_allclose(
        scores.pixel_maps(rgb, recon, "mse"), ((rgb - recon) ** 2).sum(axis=1), rtol=1e-12
    )


def test_gaussian_blur_spreads_a_point_symmetrically_and_keeps_its_mass():
    point = np.zeros((1, 15, 15))
    point[0, 7, 7] = 1.0
    blurred = scores.gaussian_blur(point, 1.5)[0]
    assert blurred.sum() == pytest.approx(1.0) and blurred.argmax() == 7 * 15 + 7
    np.testing.assert_allclose(blurred, blurred.T)
    np.testing.assert_allclose(blurred, blurred[::-1, ::-1])
    assert blurred[7, 8] < blurred[7, 7] and blurred[7, 9] < blurred[7, 8]


def test_assess_judges_a_conditional_batch_under_each_images_best_class():
    images = RNG.random((2, 1, 3, 3))
    tiled, labels = scores.every_class(images, 3)
    logits = RNG.normal(size=tiled.shape)
    logits[labels == 2] = np.log(tiled[labels == 2]) - np.log1p(-tiled[labels == 2])
    found = scores.assess(
        ["reconstruction"],
        tiled,
        {"latent": np.zeros((6, 2)), "image": 1 / (1 + np.exp(-logits)), "logits": logits},
        count=2,
        sigma=0.0,
    )
    assert found.best_class.tolist() == [2, 2]  # class 2 reproduces both images exactly
    np.testing.assert_allclose(found.maps, 0.0, atol=1e-9)
    assert found.reconstructions.shape == images.shape
