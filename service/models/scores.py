"""Anomaly scores: how unusual an image is to a model, one number per image, higher = stranger.

numpy only. Export calibrates the shipped thresholds with these functions and `/score` serves
them, so both sides compute the very same numbers from the graphs' outputs.

- `reconstruction`: the loss the model was trained with, summed over the pixels of each image:
  the Bernoulli negative log-likelihood (binary cross-entropy, nats), computed from the
  decoder's pre-sigmoid logits so that no kernel's rounding of the sigmoid's tails moves it,
  or the squared error.
- `neg_elbo` (variational models): reconstruction term + KL(q(z|x) || N(0, I)), in nats. The
  reconstruction term is taken at the posterior mean (z = mean), not from sampled z: it needs
  no randomness and one decoder call, so an image scores the same alone or in any batch, and
  it has no sampling noise to blur the ranking. Being a plug-in estimate it is not a bound:
  it sits a little below the sampled -ELBO of the test metrics.
- corrected scores, `reconstruction_minus_entropy` and `neg_elbo_minus_entropy` (models
  trained with BCE): the plain score minus the image's own Bernoulli entropy
  sum_i H(x_i), the least any Bernoulli decoder could reach on that image. Gray levels cost
  nats however good the model is, so a plain Bernoulli likelihood calls images with few gray
  pixels (digits) more likely than textured ones (clothing) whatever it was trained on
  (Nalisnick et al. 2019); subtracting the image's own floor is an input-complexity
  correction in the spirit of Serra et al. (2020) whose complexity term shares the model's
  units (it is the deviance against the saturated model, halved). A PNG's length in bits,
  Serra's compressor, was measured too and fails on noisy images (docs/export.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_FLOOR = -100.0  # torch's binary_cross_entropy clamps its logarithms here; so do we
CORRECTED = {"reconstruction": "reconstruction_minus_entropy", "neg_elbo": "neg_elbo_minus_entropy"}


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    unit: str
    description: str


def spec(name: str, reconstruction: str = "bce") -> ScoreSpec:
    """The name, unit and one-line meaning of a score."""
    if name == "reconstruction":
        if reconstruction == "mse":
            return ScoreSpec(
                name, "squared error", "squared error of the reconstruction, summed over pixels"
            )
        return ScoreSpec(
            name, "nats", "binary cross-entropy of the reconstruction, summed over pixels"
        )
    if name == "neg_elbo":
        return ScoreSpec(
            name,
            "nats",
            "negative ELBO: reconstruction at the posterior mean + KL(q(z|x) || N(0, I))",
        )
    if name in CORRECTED.values():
        plain = spec(name.removesuffix("_minus_entropy"), reconstruction)
        return ScoreSpec(
            name,
            "nats",
            f"{plain.name} minus the image's own Bernoulli entropy (input-complexity correction)",
        )
    raise ValueError(f"unknown score {name!r}")


def reconstruction_error(
    images: np.ndarray,
    reconstructions: np.ndarray,
    kind: str = "bce",
    logits: np.ndarray | None = None,
) -> np.ndarray:
    """Per-image loss [N] summed over pixels: Bernoulli NLL ("bce") or squared error ("mse").

    The Bernoulli NLL comes from the decoder's `logits` when given, exactly and in float64
    (`bernoulli_nll`); without them (graphs exported before decoders had logits) from the
    probabilities, whose logarithm is floored, so a pixel a CPU kernel rounded to exactly 0
    or 1 costs up to 100 nats there: such scores differ from one machine to the next.
    """
    x = _flat(images)
    if kind == "mse":
        return ((_flat(reconstructions) - x) ** 2).sum(axis=1)
    if kind != "bce":
        raise ValueError(f"reconstruction must be 'bce' or 'mse', not {kind!r}")
    if logits is not None:
        return bernoulli_nll(x, logits)
    y = _flat(reconstructions)
    with np.errstate(divide="ignore"):
        log_y = np.maximum(np.log(y), LOG_FLOOR)
        log_not_y = np.maximum(np.log1p(-y), LOG_FLOOR)
    return -(x * log_y + (1.0 - x) * log_not_y).sum(axis=1)


def bernoulli_nll(images: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """-sum_i [x_i log sigmoid(z_i) + (1 - x_i) log(1 - sigmoid(z_i))] per image [N] from the
    logits z, in float64 as softplus(z) - x * z: the stable form of binary cross-entropy with
    logits, exact wherever the sigmoid itself would round to 0 or 1."""
    x, z = _flat(images), _flat(logits)
    return (np.logaddexp(0.0, z) - x * z).sum(axis=1)


def pixel_maps(
    images: np.ndarray,
    reconstructions: np.ndarray,
    kind: str = "bce",
    logits: np.ndarray | None = None,
    sigma: float = 0.0,
) -> np.ndarray:
    """Where an image is anomalous: each pixel's share of the reconstruction score [N, H, W]
    (float64, summed over channels), smoothed by a Gaussian of `sigma` pixels when > 0.

    Bernoulli (bce) models: the per-pixel deviance softplus(z) - x*z - H(x) from the logits z
    (>= 0 nats; the map sums to `reconstruction_minus_entropy`), so a gray pixel the model
    reproduces costs nothing, however gray. Squared-error models: the squared error.
    """
    x = np.asarray(images, np.float64)
    if kind == "mse":
        per_pixel = (np.asarray(reconstructions, np.float64) - x) ** 2
    elif kind != "bce":
        raise ValueError(f"reconstruction must be 'bce' or 'mse', not {kind!r}")
    else:
        if logits is None:  # graphs exported before decoders had logits
            y = np.clip(np.asarray(reconstructions, np.float64), np.exp(LOG_FLOOR), 1.0)
            logits = np.log(y) - np.log1p(-np.minimum(y, 1.0 - 1e-16))
        z = np.asarray(logits, np.float64)
        per_pixel = np.logaddexp(0.0, z) - x * z - _entropy_terms(x)
    maps = per_pixel.sum(axis=1)
    return gaussian_blur(maps, sigma) if sigma > 0 else maps


def gaussian_blur(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Each map [N, H, W] convolved with a normalised Gaussian of std `sigma` pixels (truncated
    at 3 sigma, edges reflected): separable, numpy only."""
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    out = np.asarray(maps, np.float64)
    for axis in (1, 2):
        padded = np.pad(
            out, [(0, 0)] * axis + [(radius, radius)] + [(0, 0)] * (2 - axis), "reflect"
        )
        out = sum(
            w * np.take(padded, np.arange(i, i + out.shape[axis]), axis=axis)
            for i, w in enumerate(kernel)
        )
    return out


def image_ink(images: np.ndarray) -> np.ndarray:
    """The mean pixel value of each image [N]: how much ink it holds (0 for a blank image)."""
    return _flat(images).mean(axis=1)


def gaussian_kl(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(N(mean, exp(logvar)) || N(0, I)) per row [N], in nats."""
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return 0.5 * (mean**2 + np.exp(logvar) - 1.0 - logvar).sum(axis=1)


def bernoulli_entropy(images: np.ndarray) -> np.ndarray:
    """sum_i H(x_i) per image [N] in nats: the binary cross-entropy of an image against itself,
    the floor of `reconstruction_error(..., "bce")` (0 for black-and-white images)."""
    return _entropy_terms(_flat(images)).sum(axis=1)


def _entropy_terms(x: np.ndarray) -> np.ndarray:
    """H(x_i) of each pixel value, elementwise (0 at exactly 0 and 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(x > 0, x * np.log(x), 0.0) + np.where(x < 1, (1 - x) * np.log1p(-x), 0.0)
    return -terms


def compute(
    name: str,
    images: np.ndarray,
    reconstructions: np.ndarray,
    mean: np.ndarray | None = None,
    logvar: np.ndarray | None = None,
    reconstruction: str = "bce",
    logits: np.ndarray | None = None,
) -> np.ndarray:
    """Score `name` per image [N] (float64) from the model's outputs on `images`.

    `reconstructions` decode the posterior mean (the latent of deterministic models), and
    `logits` are the decoder's pre-sigmoid outputs for them where the graph has them;
    `mean` and `logvar` are the encoder's outputs, needed by the variational scores.
    """
    plain = name.removesuffix("_minus_entropy")
    score = reconstruction_error(images, reconstructions, reconstruction, logits)
    if plain == "neg_elbo":
        if mean is None or logvar is None:
            raise ValueError(f"score {name!r} needs a variational model's mean and logvar")
        score = score + gaussian_kl(mean, logvar)
    elif plain != "reconstruction":
        raise ValueError(f"unknown score {name!r}")
    if name != plain:
        if reconstruction != "bce":
            raise ValueError(f"score {name!r} corrects a Bernoulli (bce) likelihood only")
        score = score - bernoulli_entropy(images)
    return score


# ---------------------------------------------------------------- conditional models


def every_class(images: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch repeated once per class [K*N, ...] with its labels [K*N] (class-major): a
    conditional model scores an image under every class and keeps the lowest score."""
    labels = np.repeat(np.arange(num_classes), len(images))
    return np.tile(images, (num_classes,) + (1,) * (images.ndim - 1)), labels


def lowest_over_classes(values: np.ndarray, count: int) -> np.ndarray:
    """Scores of `every_class` rows [K*N] -> the lowest per image [N]."""
    return np.asarray(values).reshape(-1, count).min(axis=0)


@dataclass(frozen=True)
class Assessment:
    """What the graphs' outputs say about each of N images."""

    scores: dict[str, np.ndarray]  # by score name, [N] (each the lowest over classes)
    best_class: np.ndarray | None  # conditional models: the class that explains it best [N]
    reconstructions: np.ndarray  # [N, C, H, W], under the best class
    maps: np.ndarray | None  # [N, H, W] pixel maps under the best class, when asked for


def assess(
    names: list[str],
    images: np.ndarray,
    outputs: dict[str, np.ndarray],
    *,
    count: int,
    reconstruction: str = "bce",
    sigma: float | None = None,
) -> Assessment:
    """Scores `names` of `images` from the graphs' `outputs` on them (encoder and decoder
    outputs by name; for conditional models `images` and outputs are `every_class` rows, and
    `count` is the number of images), and their pixel maps when `sigma` is not None."""
    mean = outputs.get("mean", outputs.get("latent"))
    values = {
        name: compute(
            name,
            images,
            outputs["image"],
            mean,
            outputs.get("logvar"),
            reconstruction,
            logits=outputs.get("logits"),
        ).reshape(-1, count)
        for name in names
    }
    rows = np.arange(count)
    best = values[names[0]].argmin(axis=0)  # row-block of each image's best class
    pick = best * count + rows
    maps = None
    if sigma is not None:
        logits = outputs.get("logits")
        maps = pixel_maps(
            images[pick],
            outputs["image"][pick],
            reconstruction,
            None if logits is None else logits[pick],
            sigma,
        )
    return Assessment(
        scores={name: v.min(axis=0) for name, v in values.items()},
        best_class=best if len(values[names[0]]) > 1 else None,
        reconstructions=outputs["image"][pick],
        maps=maps,
    )


# ---------------------------------------------------------------- calibration


def quantile_levels(step: float = 0.01, tail: tuple[float, ...] = (0.995, 0.999)) -> np.ndarray:
    """The cumulative probabilities stored with a calibration: every percent and a finer tail."""
    levels = np.round(np.arange(0.0, 1.0 + step / 2, step), 6)
    return np.unique(np.concatenate([levels, tail]))


def quantiles(scores: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The empirical quantiles of `scores` at `levels` (linear interpolation, numpy's default)."""
    return np.quantile(np.asarray(scores, np.float64), levels)


def percentiles(
    scores: np.ndarray, levels: np.ndarray | list[float], values: np.ndarray | list[float]
) -> np.ndarray:
    """Where each score falls in the calibrated distribution, in percent [0, 100].

    Linear between the stored quantiles; a score below the smallest validation score is at 0,
    one above the largest at 100.
    """
    values = np.asarray(values, np.float64)
    levels = np.asarray(levels, np.float64)
    # np.interp needs strictly increasing x: of equal quantiles keep the highest level
    keep = np.append(values[1:] > values[:-1], True)
    return 100.0 * np.interp(np.asarray(scores, np.float64), values[keep], levels[keep])


def anomalous(scores: np.ndarray, threshold: float) -> np.ndarray:
    """True where a score lies above the threshold."""
    return np.asarray(scores, np.float64) > threshold


def auroc(inliers: np.ndarray, outliers: np.ndarray) -> float:
    """Area under the ROC curve of telling outliers from inliers by a higher score (ties count
    half): the chance that a random outlier outscores a random inlier."""
    inliers, outliers = np.asarray(inliers, np.float64), np.asarray(outliers, np.float64)
    ordered = np.sort(inliers)
    below = np.searchsorted(ordered, outliers, side="left")
    not_above = np.searchsorted(ordered, outliers, side="right")
    return float((below + not_above).sum() / (2.0 * len(inliers) * len(outliers)))


def _flat(images: np.ndarray) -> np.ndarray:
    array = np.asarray(images, np.float64)
    return array.reshape(len(array), -1)
