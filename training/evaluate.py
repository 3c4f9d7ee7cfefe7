"""Test-split metrics of a trained autoencoder, the PCA yardstick, and a readable report.

Units: `recon_bce`, `neg_elbo`, `iw_nll` and `kl` are nats per image (BCE summed over pixels,
the Bernoulli likelihood of the usual MNIST results); `recon_mse` and `pca_mse` are squared
errors averaged over pixels and images. Reconstructions use the posterior mean (no sampling);
`neg_elbo` draws one z per image and `iw_nll` draws `iw_samples` per image, from a seeded
generator, so the figures repeat exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import Tensor

from training.data import ImageSplit, Splits
from training.losses import corrupt, gaussian_kl, reconstruction_loss
from training.models import Autoencoder

ACTIVE_UNIT_VARIANCE = 0.01  # a unit is active when Var_x(E[z|x]) exceeds this
NEAR_ZERO_RELATIVE = 0.01  # a code entry is near zero below 1% of the largest |code|
DAE_TEST_SIGMA = 0.5
BATCH = 500

METRIC_DESCRIPTIONS = {
    "recon_mse": "reconstruction squared error per pixel",
    "recon_bce": "reconstruction binary cross-entropy per image (nats, summed over pixels)",
    "neg_elbo": "negative ELBO per image (nats; one sampled z per image)",
    "iw_nll": "importance-weighted estimate of -log p(x) per image (nats)",
    "kl": "KL(q(z|x) || N(0, I)) per image (nats)",
    "active_units": (
        f"latent units whose posterior mean varies over the test set (var > {ACTIVE_UNIT_VARIANCE})"
    ),
    "pca_mse": "squared error per pixel of PCA with as many components as the latent size",
    "mse_ratio_to_pca": "recon_mse / pca_mse (below 1: the model beats PCA)",
    "psnr_noisy": f"PSNR (dB) of the inputs with Gaussian noise sigma={DAE_TEST_SIGMA}, clipped",
    "psnr_denoised": "PSNR (dB) of the model's reconstructions of those noisy inputs",
    "psnr_gain": "psnr_denoised - psnr_noisy (dB)",
    "near_zero_fraction": (
        f"fraction of code entries below {NEAR_ZERO_RELATIVE:.0%} of the largest |code|"
    ),
    "iw_samples": "importance samples per image behind iw_nll",
    "iw_images": "test images behind iw_nll",
    "test_images": "images in the test split",
}


# ---------------------------------------------------------------- PCA yardstick


def fit_pca(images: Tensor, components: int) -> tuple[Tensor, Tensor]:
    """Mean [P] and top `components` principal directions [K, P] of flattened images."""
    flat = images.flatten(1).double()
    mean = flat.mean(0)
    centered = flat - mean
    eigenvalues, eigenvectors = torch.linalg.eigh(centered.T @ centered)
    top = eigenvectors[:, eigenvalues.argsort(descending=True)[:components]]
    return mean.float(), top.T.contiguous().float()


def pca_reconstruct(images: Tensor, mean: Tensor, directions: Tensor) -> Tensor:
    """Project onto the directions and back; clipped to [0, 1] like the models' outputs."""
    flat = images.flatten(1) - mean
    restored = (flat @ directions.T) @ directions + mean
    return restored.clamp(0.0, 1.0).reshape(images.shape)


def pca_mse(train: ImageSplit, test: ImageSplit, components: int) -> float:
    mean, directions = fit_pca(train.images, components)
    restored = pca_reconstruct(test.images, mean, directions)
    return (restored - test.images).pow(2).mean().item()


# ---------------------------------------------------------------- model metrics


def _device(model: Autoencoder) -> torch.device:
    return next(model.parameters()).device


def _batches(model: Autoencoder, split: ImageSplit):
    device = _device(model)
    for images, labels in split.batches(BATCH):
        yield images.to(device), model.one_hot(labels.to(device))


@torch.no_grad()
def reconstruction_metrics(model: Autoencoder, split: ImageSplit) -> dict[str, float]:
    squared, bce = 0.0, 0.0
    for images, label in _batches(model, split):
        recon = model.decode(model.encode_mean(images, label), label)
        squared += (recon - images).pow(2).flatten(1).mean(1).sum().item()
        bce += reconstruction_loss(recon, images, "bce").sum().item()
    return {"recon_mse": squared / len(split), "recon_bce": bce / len(split)}


@torch.no_grad()
def variational_metrics(model: Autoencoder, split: ImageSplit, seed: int) -> dict[str, float]:
    generator = torch.Generator(device=_device(model)).manual_seed(seed)
    neg_elbo, kl, means = 0.0, 0.0, []
    for images, label in _batches(model, split):
        out = model(images, label, sample=True, generator=generator)
        batch_kl = gaussian_kl(out.mean, out.logvar)
        neg_elbo += (reconstruction_loss(out.reconstruction, images) + batch_kl).sum().item()
        kl += batch_kl.sum().item()
        means.append(out.mean.cpu())
    active = (torch.cat(means).var(0) > ACTIVE_UNIT_VARIANCE).sum().item()
    return {"neg_elbo": neg_elbo / len(split), "kl": kl / len(split), "active_units": float(active)}


def _diagonal_gaussian_log_density(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mean).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def importance_weighted_nll(
    model: Autoencoder, split: ImageSplit, samples: int, seed: int, chunk: int = 50
) -> float:
    """-log p(x) ~= -log (1/k sum_k p(x|z_k) p(z_k) / q(z_k|x)), z_k ~ q(z|x) (Burda et al.)."""
    generator = torch.Generator(device=_device(model)).manual_seed(seed + 1)
    total = 0.0
    for images, label in _batches(model, split):
        mean, logvar = model.encoder(images, label)
        log_weights = []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            eps = torch.randn((k, *mean.shape), generator=generator, device=mean.device)
            z = mean + (0.5 * logvar).exp() * eps  # [k, B, D]
            repeated_label = None if label is None else label.repeat(k, 1)
            recon = model.decoder(z.flatten(0, 1), repeated_label)
            log_px = -reconstruction_loss(recon, images.repeat(k, 1, 1, 1)).view(k, -1)
            log_pz = _diagonal_gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
            log_qz = _diagonal_gaussian_log_density(z, mean, logvar)
            log_weights.append(log_px + log_pz - log_qz)
        log_px_estimate = torch.logsumexp(torch.cat(log_weights), 0) - math.log(samples)
        total -= log_px_estimate.sum().item()
    return total / len(split)


def psnr(estimate: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR in dB for values in [0, 1]."""
    mse = (estimate - target).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)


@torch.no_grad()
def denoising_metrics(model: Autoencoder, split: ImageSplit, seed: int) -> dict[str, float]:
    generator = torch.Generator(device=_device(model)).manual_seed(seed + 2)
    noisy_db, denoised_db = 0.0, 0.0
    for images, label in _batches(model, split):
        noisy = corrupt(images, "gaussian", DAE_TEST_SIGMA, generator)
        denoised = model.decode(model.encode_mean(noisy, label), label)
        noisy_db += psnr(noisy, images).sum().item()
        denoised_db += psnr(denoised, images).sum().item()
    noisy_db, denoised_db = noisy_db / len(split), denoised_db / len(split)
    return {
        "psnr_noisy": noisy_db,
        "psnr_denoised": denoised_db,
        "psnr_gain": denoised_db - noisy_db,
    }


@torch.no_grad()
def sparsity_metrics(model: Autoencoder, split: ImageSplit) -> dict[str, float]:
    codes = torch.cat(
        [model.encode_mean(images, label).cpu() for images, label in _batches(model, split)]
    )
    threshold = NEAR_ZERO_RELATIVE * codes.abs().max().clamp_min(1e-12)
    return {"near_zero_fraction": (codes.abs() < threshold).float().mean().item()}


# ---------------------------------------------------------------- the whole evaluation


def evaluate(
    model: Autoencoder,
    splits: Splits,
    out_dir: str | Path | None = None,
    *,
    reconstruction: str = "bce",
    iw_samples: int = 200,
    iw_images: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Metrics on the test split (see METRIC_DESCRIPTIONS); writes metrics.json and report.md
    to `out_dir` when given. `iw_images` caps the test images behind the costly IW-NLL."""
    model.eval()
    test = splits.test
    metrics = reconstruction_metrics(model, test)
    if model.variational:
        metrics |= variational_metrics(model, test, seed)
        if iw_samples > 0:
            iw_split = test.head(iw_images)
            metrics["iw_nll"] = importance_weighted_nll(model, iw_split, iw_samples, seed)
            metrics["iw_samples"], metrics["iw_images"] = float(iw_samples), float(len(iw_split))
    metrics["pca_mse"] = pca_mse(splits.train, test, model.latent_dim)
    metrics["mse_ratio_to_pca"] = metrics["recon_mse"] / metrics["pca_mse"]
    if model.family == "dae":
        metrics |= denoising_metrics(model, test, seed)
    if model.family == "sparse_ae":
        metrics |= sparsity_metrics(model, test)
    metrics["test_images"] = float(len(test))
    metrics = {key: float(value) for key, value in metrics.items()}
    if out_dir is not None:
        write_metrics(Path(out_dir), metrics, model, splits, reconstruction)
    return metrics


def write_metrics(
    out_dir: Path,
    metrics: dict[str, float],
    model: Autoencoder,
    splits: Splits,
    reconstruction: str,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / "report.md").write_text(render_report(metrics, model, splits, reconstruction))


def render_report(
    metrics: dict[str, float], model: Autoencoder, splits: Splits, reconstruction: str
) -> str:
    info = splits.info
    lines = [
        f"# {model.family} / {model.architecture}, latent {model.latent_dim}, on {info['name']}",
        "",
        f"Model: {model.describe()}; trained with {reconstruction} reconstruction loss.",
        f"Data: {info['source']}.",
        "",
        "| split | images | what |",
        "|---|---:|---|",
    ]
    for key, size in info["sizes"].items():
        lines.append(f"| {key} | {size:,} | {info['split'][key]} |")
    lines += ["", "## Test metrics", "", "| metric | value | meaning |", "|---|---:|---|"]
    for key, value in metrics.items():
        lines.append(f"| `{key}` | {value:.4g} | {METRIC_DESCRIPTIONS.get(key, '')} |")
    ratio = metrics["mse_ratio_to_pca"]
    verdict = "beats" if ratio < 1 else "does not beat"
    lines += [
        "",
        f"The model {verdict} PCA with {model.latent_dim} components: its reconstruction error "
        f"is {ratio:.2f} times PCA's.",
        "",
    ]
    return "\n".join(lines)
