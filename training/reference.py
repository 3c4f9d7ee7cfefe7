"""What export stores beside the graphs: the latent map (reference set) and the AE sampler.

Both are fitted on latents the caller computed with the model's encoder (the posterior mean
for variational models), so this module needs numpy and scikit-learn but no torch.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from service.models.manifest import MixtureSampler, ReferenceSet

MIXTURE_COMPONENTS = 10  # one per digit or garment class is the natural guess for the zoo
REFERENCE_POINTS = 2000
DECIMALS = 5  # JSON size: latents are read by people and a web page, not fed back bit-exact


def reference_set(
    latents: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    max_points: int = REFERENCE_POINTS,
    seed: int = 0,
) -> ReferenceSet:
    """A 2-D map of up to `max_points` latents with their labels, and per-class latent means.

    2-D latents map through the identity; larger ones through PCA, whose mean and components
    are stored so a point picked on the map maps back to a latent.
    """
    latents = np.asarray(latents, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    chosen = _subset(len(latents), max_points, seed)
    mean, components = _projection(latents)
    points = (latents[chosen] - mean) @ components.T
    return ReferenceSet(
        projection="identity" if latents.shape[1] == 2 else "pca",
        projection_mean=_rounded(mean),
        projection_components=_rounded(components),
        points=[tuple(p) for p in _rounded(points)],
        labels=labels[chosen].tolist(),
        class_means=_class_means(latents, labels, num_classes),
    )


def mixture_sampler(
    latents: np.ndarray, components: int = MIXTURE_COMPONENTS, seed: int = 0
) -> MixtureSampler:
    """A diagonal Gaussian mixture fitted on training latents, for sampling a plain AE."""
    gmm = GaussianMixture(
        n_components=min(components, len(latents)),
        covariance_type="diag",
        random_state=seed,
        n_init=1,
        max_iter=200,
    ).fit(np.asarray(latents, dtype=np.float64))
    weights = gmm.weights_ / gmm.weights_.sum()
    return MixtureSampler(
        weights=weights.tolist(),
        means=gmm.means_.tolist(),
        variances=gmm.covariances_.tolist(),
    )


def _projection(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dim = latents.shape[1]
    if dim == 2:
        return np.zeros(2), np.eye(2)
    if dim == 1:
        raise ValueError("a 1-D latent has no 2-D map")
    pca = PCA(n_components=2, svd_solver="full").fit(latents)
    return pca.mean_, pca.components_


def _class_means(
    latents: np.ndarray, labels: np.ndarray, num_classes: int
) -> list[list[float]] | None:
    if num_classes == 0:
        return None
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"no reference latents for classes {missing}; cannot form class means")
    return _rounded(np.stack([latents[labels == c].mean(axis=0) for c in range(num_classes)]))


def _subset(count: int, max_points: int, seed: int) -> np.ndarray:
    if count <= max_points:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=max_points, replace=False))


def _rounded(values: np.ndarray) -> list:
    return np.round(np.asarray(values, dtype=np.float64), DECIMALS).tolist()
