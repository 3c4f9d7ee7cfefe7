import dataclasses
import json

import numpy as np
import pytest
import torch

from training.data import ImageSplit
from training.evaluate import evaluate, fit_pca, pca_mse, psnr
from training.train import train

VARIATIONAL_KEYS = {"neg_elbo", "iw_nll", "kl", "active_units"}
COMMON_KEYS = {"recon_mse", "recon_bce", "pca_mse", "mse_ratio_to_pca", "test_images"}


def test_pca_reconstructs_data_in_its_subspace_exactly():
    generator = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 16, generator=generator)

    def sample(n):
        flat = 0.5 + 0.01 * torch.randn(n, 3, generator=generator) @ basis  # stays in (0, 1)
        return ImageSplit(flat.view(n, 1, 4, 4), torch.zeros(n, dtype=torch.int64))

    train_split, test_split = sample(200), sample(50)
    assert pca_mse(train_split, test_split, 3) < 1e-9
    assert pca_mse(train_split, test_split, 1) > 1e-5
    mean, directions = fit_pca(train_split.images, 2)
    assert torch.allclose(directions @ directions.T, torch.eye(2), atol=1e-4)


def test_psnr_known_value():
    target = torch.zeros(1, 1, 2, 2)
    assert psnr(torch.full_like(target, 0.1), target).item() == pytest.approx(20.0, rel=1e-5)


@pytest.mark.parametrize(
    ("family", "keys"),
    [
        ("vae", VARIATIONAL_KEYS),
        ("cvae", VARIATIONAL_KEYS),
        ("ae", set()),
        ("dae", {"psnr_noisy", "psnr_denoised", "psnr_gain"}),
        ("sparse_ae", {"near_zero_fraction"}),
    ],
)
def test_metrics_per_family(family, keys, tiny_config, tiny_splits, tmp_path):
    config = dataclasses.replace(tiny_config, family=family, latent_dim=4, epochs=3)
    result = train(config, tiny_splits)
    metrics = result.test_metrics
    assert COMMON_KEYS | keys <= set(metrics)
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert metrics["mse_ratio_to_pca"] == pytest.approx(metrics["recon_mse"] / metrics["pca_mse"])
    written = json.loads((result.run_dir / "metrics.json").read_text())
    assert written == metrics
    report = (result.run_dir / "report.md").read_text()
    assert "mse_ratio_to_pca" in report and tiny_splits.info["split"]["test"] in report
    if family in ("vae", "cvae"):
        assert metrics["kl"] > 0 and 0 <= metrics["active_units"] <= 4
        # the importance-weighted bound is tighter than the ELBO (up to sampling noise)
        assert metrics["iw_nll"] < metrics["neg_elbo"] + 1.0
    if family == "dae":
        assert metrics["psnr_gain"] == pytest.approx(
            metrics["psnr_denoised"] - metrics["psnr_noisy"]
        )
    if family == "sparse_ae":
        assert 0 <= metrics["near_zero_fraction"] <= 1


def test_evaluation_repeats_exactly(tiny_config, tiny_splits):
    from training.train import load_checkpoint

    result = train(dataclasses.replace(tiny_config, evaluate=False), tiny_splits)
    model, _ = load_checkpoint(result.best_checkpoint)
    first = evaluate(model, tiny_splits, iw_samples=20)
    assert evaluate(model, tiny_splits, iw_samples=20) == first
