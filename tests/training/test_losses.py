import math

import pytest
import torch

from training.losses import (
    corrupt,
    gaussian_kl,
    kl_sparsity,
    l1_sparsity,
    reconstruction_loss,
)


def test_bce_of_a_half_is_log_two_per_pixel():
    target = torch.randint(0, 2, (2, 1, 4, 4)).float()
    loss = reconstruction_loss(torch.full_like(target, 0.5), target, "bce")
    assert torch.allclose(loss, torch.full((2,), 16 * math.log(2)))


def test_mse_is_summed_over_pixels_per_image():
    target = torch.zeros(3, 1, 2, 2)
    loss = reconstruction_loss(torch.full_like(target, 0.5), target, "mse")
    assert torch.allclose(loss, torch.full((3,), 4 * 0.25))
    with pytest.raises(ValueError):
        reconstruction_loss(target, target, "l1")


def test_gaussian_kl_known_values():
    zeros = torch.zeros(2, 3)
    assert torch.allclose(gaussian_kl(zeros, zeros), torch.zeros(2))
    # mean 1, variance 1: 0.5 per dimension; mean 0, variance e: 0.5 * (e - 1 - 1) per dim
    assert torch.allclose(gaussian_kl(torch.ones(1, 3), torch.zeros(1, 3)), torch.tensor([1.5]))
    expected = 0.5 * (math.e - 2) * 3
    assert torch.allclose(gaussian_kl(zeros[:1], torch.ones(1, 3)), torch.tensor([expected]))


def test_sparsity_penalties():
    code = torch.tensor([[1.0, -2.0], [0.0, 0.5]])
    assert torch.allclose(l1_sparsity(code), torch.tensor([3.0, 0.5]))
    at_target = torch.full((4, 3), 0.05)
    assert kl_sparsity(at_target, 0.05).abs() < 1e-6
    rho_hat, rho = 0.5, 0.05
    expected = 3 * (rho * math.log(rho / rho_hat) + (1 - rho) * math.log((1 - rho) / (1 - rho_hat)))
    assert kl_sparsity(torch.full((4, 3), rho_hat), rho).item() == pytest.approx(expected, rel=1e-5)


def test_corruption_is_seeded_and_stays_in_range():
    images = torch.rand(8, 1, 6, 6)
    noisy = corrupt(images, "gaussian", 0.5, torch.Generator().manual_seed(3))
    again = corrupt(images, "gaussian", 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(noisy, again)
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert not torch.equal(noisy, images)
    masked = corrupt(torch.ones(100, 1, 10, 10), "masking", 0.3, torch.Generator().manual_seed(0))
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.02)
