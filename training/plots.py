"""Pictures of a trained autoencoder, each written to a PNG.

Uses matplotlib's object API (`Figure`, rendered by Agg), so it never opens a window and
never touches the pyplot state of a caller.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid

from service.models.latents import slerp
from training.data import ImageSplit, Splits
from training.models import Autoencoder

SCATTER_POINTS = 2000
TSNE_POINTS = 1500
DPI = 110


# ---------------------------------------------------------------- helpers


def _device(model: Autoencoder) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_split(model: Autoencoder, split: ImageSplit, limit: int | None = None):
    """Deterministic codes (posterior means) [N, D] and labels [N] as numpy arrays."""
    part = split if limit is None else split.head(limit)
    device = _device(model)
    codes = [
        model.encode_mean(images.to(device), model.one_hot(labels.to(device))).cpu()
        for images, labels in part.batches(500)
    ]
    return torch.cat(codes).numpy(), part.labels.numpy()


@torch.no_grad()
def decode(model: Autoencoder, latents: np.ndarray | Tensor, labels=None) -> Tensor:
    device = _device(model)
    z = torch.as_tensor(np.asarray(latents), dtype=torch.float32, device=device)
    label = None
    if model.conditional:
        label = model.one_hot(torch.as_tensor(np.asarray(labels), device=device))
    return model.decode(z, label).cpu()


def principal_plane(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and the two leading principal directions [2, D] of the codes.

    For 2-D codes the directions are the identity, so the plane is the latent space itself.
    """
    mean = codes.mean(0)
    if codes.shape[1] == 2:
        return mean, np.eye(2)
    _, _, vt = np.linalg.svd(codes - mean, full_matrices=False)
    return mean, vt[:2]


def lerp(start: np.ndarray, end: np.ndarray, t: np.ndarray) -> np.ndarray:
    return (1 - t[:, None]) * start + t[:, None] * end


def _mosaic(images: Tensor, columns: int, padding: int = 2) -> np.ndarray:
    grid = make_grid(images, nrow=columns, padding=padding, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


def _show(ax, images: Tensor, columns: int, title: str) -> None:
    ax.imshow(_mosaic(images, columns), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _name(model: Autoencoder) -> str:
    return f"{model.family} {model.architecture}, z={model.latent_dim}"


# ---------------------------------------------------------------- the pictures


def plot_latent_scatter(
    model: Autoencoder, split: ImageSplit, classes: list[str], path: Path, tsne: bool = False
) -> Path:
    """Test codes coloured by class: the latent plane itself for 2-D codes, else its PCA
    projection (and a t-SNE map beside it when `tsne`)."""
    codes, labels = encode_split(model, split, SCATTER_POINTS)
    if codes.shape[1] == 2:
        views = [(codes, "latent space")]
    else:
        mean, directions = principal_plane(codes)
        views = [((codes - mean) @ directions.T, "first two principal components")]
    if tsne and codes.shape[1] > 2:
        from sklearn.manifold import TSNE

        subset = slice(0, TSNE_POINTS)
        embedded = TSNE(2, init="pca", random_state=0).fit_transform(codes[subset])
        views.append((embedded, "t-SNE"))
    figure = Figure(figsize=(6.5 * len(views) + 1.5, 6))
    axes = figure.subplots(1, len(views), squeeze=False)[0]
    for ax, (points, title) in zip(axes, views, strict=True):
        view_labels = labels[: len(points)]
        if not classes:  # an unlabelled dataset (a flat image folder): one colour
            ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.7)
        for index, name in enumerate(classes):
            chosen = view_labels == index
            ax.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.7, label=name)
        ax.set_title(f"{_name(model)}: test codes, {title}")
        axis = "z" if codes.shape[1] == 2 and title == "latent space" else "component "
        ax.set_xlabel(f"{axis}1" if title != "t-SNE" else "t-SNE 1")
        ax.set_ylabel(f"{axis}2" if title != "t-SNE" else "t-SNE 2")
    if classes:
        axes[-1].legend(title="class", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3)
    return _save(figure, path)


def plot_latent_grid(model: Autoencoder, split: ImageSplit, path: Path, size: int = 15) -> Path:
    """Images decoded over a size x size grid on a 2-D plane of the latent space: the latent
    space itself for 2-D codes, else the plane of the codes' two leading principal directions,
    spanning +-2.5 standard deviations of the codes along each."""
    codes, labels = encode_split(model, split, SCATTER_POINTS)
    mean, directions = principal_plane(codes)
    spread = 2.5 * ((codes - mean) @ directions.T).std(0)
    steps = [np.linspace(-s, s, size) for s in spread]
    plane = np.array([[x, y] for y in steps[1][::-1] for x in steps[0]])
    latents = mean + plane @ directions
    fixed_label = np.zeros(len(latents), dtype=np.int64)  # a CVAE grid holds its class fixed
    images = decode(model, latents, fixed_label)
    figure = Figure(figsize=(9, 9))
    ax = figure.subplots()
    ax.imshow(
        _mosaic(images, size, padding=0),
        cmap="gray",
        vmin=0,
        vmax=1,
        extent=(-spread[0], spread[0], -spread[1], spread[1]),
        aspect="auto",
    )
    plane_name = "z1 / z2" if codes.shape[1] == 2 else "first two principal directions of the codes"
    cond = ", class 0" if model.conditional else ""
    ax.set_title(f"{_name(model)}: decoded grid over {plane_name}{cond}")
    ax.set_xlabel("z1" if codes.shape[1] == 2 else "offset along principal direction 1")
    ax.set_ylabel("z2" if codes.shape[1] == 2 else "offset along principal direction 2")
    return _save(figure, path)


def _pairs(labels: np.ndarray, count: int) -> list[tuple[int, int]]:
    """`count` (start, end) index pairs, each end of another class where one exists."""
    pairs = []
    for start in range(min(count, len(labels))):
        others = [i for i in range(len(labels)) if labels[i] != labels[start]]
        others = others or [(start + 1) % len(labels)]
        pairs.append((start, others[(7 * start) % len(others)]))
    return pairs


def plot_interpolation(
    model: Autoencoder, split: ImageSplit, path: Path, pairs: int = 4, steps: int = 10
) -> Path:
    """Linear and spherical interpolation strips between pairs of test images of different
    classes (a CVAE decodes with the start image's class)."""
    codes, labels = encode_split(model, split, 200)
    t = np.linspace(0.0, 1.0, steps)
    rows: list[Tensor] = []
    titles = []
    for start, end in _pairs(labels, pairs):
        for method, interpolate in (("linear", lerp), ("spherical", slerp)):
            path_latents = interpolate(codes[start], codes[end], t)
            rows.append(decode(model, path_latents, np.full(steps, labels[start])))
            titles.append(f"{method}: test image {start} -> {end}")
    figure = Figure(figsize=(steps * 0.9, len(rows) * 1.1 + 0.8))
    axes = figure.subplots(len(rows), 1)
    for ax, row, title in zip(axes, rows, titles, strict=True):
        _show(ax, row, steps, "")
        ax.set_ylabel(title.split(":")[0], rotation=0, ha="right", va="center")
        ax.set_title(title, fontsize=8)
    figure.suptitle(f"{_name(model)}: interpolation (left: start image's code, right: end's)")
    return _save(figure, path)


@torch.no_grad()
def plot_reconstructions(
    model: Autoencoder, split: ImageSplit, path: Path, count: int = 12
) -> Path:
    """Test images (top) above their reconstructions; a DAE also shows its noisy inputs."""
    from training.evaluate import DAE_TEST_SIGMA
    from training.losses import corrupt

    images, labels = split.images[:count], split.labels[:count]
    device = _device(model)
    label = model.one_hot(labels.to(device))
    inputs = images.to(device)
    rows = [("input", images)]
    if model.family == "dae":
        generator = torch.Generator(device=device).manual_seed(0)
        inputs = corrupt(inputs, "gaussian", DAE_TEST_SIGMA, generator)
        rows.append((f"noisy (sigma {DAE_TEST_SIGMA})", inputs.cpu()))
    rows.append(("reconstruction", model.decode(model.encode_mean(inputs, label), label).cpu()))
    figure = Figure(figsize=(count * 0.9, len(rows) * 1.2 + 0.6))
    axes = figure.subplots(len(rows), 1)
    for ax, (title, row) in zip(axes, rows, strict=True):
        _show(ax, row, count, title)
    figure.suptitle(f"{_name(model)}: test images and reconstructions")
    return _save(figure, path)


@torch.no_grad()
def plot_samples(
    model: Autoencoder, splits: Splits, path: Path, count: int = 64, seed: int = 0
) -> Path:
    """Decoded samples: z ~ N(0, I) for variational models (one row per class for a CVAE);
    for deterministic AEs, z ~ a Gaussian fitted to the training codes (the prior's stand-in)."""
    rng = np.random.default_rng(seed)
    if model.conditional:
        per_class = 10
        labels = np.repeat(np.arange(model.num_classes), per_class)
        latents = rng.standard_normal((len(labels), model.latent_dim))
        columns, how = per_class, "z ~ N(0, I), one row per class"
    elif model.variational:
        labels, columns, how = None, 8, "z ~ N(0, I)"
        latents = rng.standard_normal((count, model.latent_dim))
    else:
        codes, _ = encode_split(model, splits.train, 5000)
        covariance = np.cov(codes, rowvar=False).reshape(model.latent_dim, model.latent_dim)
        latents = rng.multivariate_normal(codes.mean(0), covariance, size=count)
        labels, columns, how = None, 8, "z ~ Gaussian fitted to the training codes"
    images = decode(model, latents, labels)
    figure = Figure(figsize=(columns * 0.9 + 1.5, len(images) / columns * 0.9 + 0.8))
    ax = figure.subplots()
    _show(ax, images, columns, f"{_name(model)}: samples, {how}")
    if model.conditional:
        height = images.shape[-2] + 2
        ax.set_yticks([2 + height * (i + 0.5) for i in range(model.num_classes)])
        ax.set_yticklabels(splits.classes)
    return _save(figure, path)


def draw_all(
    model: Autoencoder, splits: Splits, out_dir: str | Path, tsne: bool = False, seed: int = 0
) -> dict[str, Path]:
    """Every picture, as PNG files in `out_dir`; returns their paths by name."""
    out = Path(out_dir)
    model.eval()
    return {
        "latent_scatter": plot_latent_scatter(
            model, splits.test, splits.classes, out / "latent_scatter.png", tsne
        ),
        "latent_grid": plot_latent_grid(model, splits.test, out / "latent_grid.png"),
        "interpolation": plot_interpolation(model, splits.test, out / "interpolation.png"),
        "reconstructions": plot_reconstructions(model, splits.test, out / "reconstructions.png"),
        "samples": plot_samples(model, splits, out / "samples.png", seed=seed),
    }
