"""Anomaly scores at export: calibrated on the validation split, evaluated on held-out data.

Every score runs through the exported ONNX graphs (ONNX Runtime) and `service.models.scores`, the
module `/score` serves with, so the manifest's threshold and quantiles are the numbers the
service compares against. Nothing here draws random numbers but the seeded noise of the
"digits under Gaussian noise" outlier set.

Conditional models score an image under every class and keep the lowest score: the question
"is this image unusual?" does not come with a label, and an image that fits one class well is
not an anomaly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.models import scores
from service.models.manifest import Calibration, InkRange, PixelCalibration, ScoreCalibration

DEFAULT_QUANTILE = 0.99
NOISE_SIGMA = 0.5
NOISE_SET = f"gaussian_noise_{NOISE_SIGMA:g}"
OUTLIER_IMAGES = 2000  # outlier images per set, at most (the first of its test split)
BATCH = 200  # images per graph call (times the classes of a conditional model)
PIXEL_SIGMA = 1.0  # the Gaussian smoothing of the pixel maps, in pixels


@dataclass
class ScoreSamples:
    """Scores of the held-out sets, by score name: what the card's histogram shows."""

    test: dict[str, np.ndarray] = field(default_factory=dict)
    outliers: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


class GraphScorer:
    """Scores images through a model folder's ONNX graphs."""

    def __init__(
        self, folder: Path, *, variational: bool, num_classes: int, reconstruction: str
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(folder / "encoder.onnx"), options, providers)
        self.decoder = ort.InferenceSession(str(folder / "decoder.onnx"), options, providers)
        self.variational = variational
        self.num_classes = num_classes
        self.reconstruction = reconstruction

    def score_names(self) -> tuple[str, str | None]:
        """The model's score and its complexity-corrected one (Bernoulli likelihoods only)."""
        plain = "neg_elbo" if self.variational else "reconstruction"
        return plain, scores.CORRECTED[plain] if self.reconstruction == "bce" else None

    def __call__(self, name: str, images: np.ndarray) -> np.ndarray:
        return self.assess(images).scores[name]

    def pixel_maps(self, images: np.ndarray, sigma: float = 0.0) -> np.ndarray:
        """[N, H, W] per-pixel maps (scores.pixel_maps), under each image's best class."""
        return self.assess(images, sigma).maps

    def assess(self, images: np.ndarray, sigma: float | None = None) -> scores.Assessment:
        """Both scores, the best class and (given `sigma`) the pixel maps of `images`."""
        images = np.asarray(images, np.float32)
        parts = [self._batch(images[i : i + BATCH], sigma) for i in range(0, len(images), BATCH)]
        joined = {
            field: None if getattr(parts[0], field) is None else _concat(parts, field)
            for field in ("best_class", "reconstructions", "maps")
        }
        names = parts[0].scores
        return scores.Assessment(
            scores={n: np.concatenate([p.scores[n] for p in parts]) for n in names}, **joined
        )

    def _batch(self, images: np.ndarray, sigma: float | None) -> scores.Assessment:
        rows, label = images, {}
        if self.num_classes:
            rows, labels = scores.every_class(images, self.num_classes)
            label = {"label": np.eye(self.num_classes, dtype=np.float32)[labels]}
        encoded = self.encoder.run(None, {"image": rows, **label})
        outputs = dict(zip(self._names(self.encoder), encoded, strict=True))
        mean = outputs.get("mean", outputs.get("latent"))
        decoded = self.decoder.run(None, {"latent": mean, **label})
        outputs |= dict(zip(self._names(self.decoder), decoded, strict=True))
        return scores.assess(
            list(filter(None, self.score_names())),
            rows,
            outputs,
            count=len(images),
            reconstruction=self.reconstruction,
            sigma=sigma,
        )

    @staticmethod
    def _names(session: ort.InferenceSession) -> list[str]:
        return [output.name for output in session.get_outputs()]


def _concat(parts: list[scores.Assessment], field: str) -> np.ndarray:
    return np.concatenate([getattr(part, field) for part in parts])


def calibrate(
    scorer: GraphScorer,
    validation: np.ndarray,
    test: np.ndarray,
    outliers: Mapping[str, np.ndarray],
    *,
    quantile: float = DEFAULT_QUANTILE,
    seed: int = 0,
    sigma: float = PIXEL_SIGMA,
) -> tuple[Calibration, ScoreSamples]:
    """The calibration (thresholds and quantiles on `validation`, figures on `test` and the
    outlier sets, plus `test` under Gaussian noise; the pixel maps' threshold; the ink range)
    and the held-out scores behind it."""
    held_out = {**outliers, NOISE_SET: noisy(test, NOISE_SIGMA, seed)}
    normal = scorer.assess(validation, sigma)
    samples = ScoreSamples(test=scorer.assess(test).scores)
    judged = {key: scorer.assess(images).scores for key, images in held_out.items()}
    calibrated = {}
    for name in normal.scores:
        samples.outliers[name] = {key: values[name] for key, values in judged.items()}
        calibrated[name] = score_calibration(
            name,
            normal.scores[name],
            samples.test[name],
            samples.outliers[name],
            quantile=quantile,
            reconstruction=scorer.reconstruction,
            best_class=normal.best_class,
            classes=scorer.num_classes,
        )
    plain, fixed = scorer.score_names()
    calibration = Calibration(
        split="validation",
        images=len(validation),
        score=calibrated[plain],
        corrected=calibrated[fixed] if fixed else None,
        pixel=pixel_calibration(normal, quantile, sigma, scorer.reconstruction, scorer.num_classes),
        ink=ink_range(validation),
    )
    return calibration, samples


def score_calibration(
    name: str,
    validation: np.ndarray,
    test: np.ndarray,
    outliers: Mapping[str, np.ndarray],
    *,
    quantile: float,
    reconstruction: str,
    best_class: np.ndarray | None = None,
    classes: int = 0,
) -> ScoreCalibration:
    levels = scores.quantile_levels()
    threshold = float(np.quantile(validation, quantile))
    evaluation = {"test_false_alarm_rate": float(scores.anomalous(test, threshold).mean())}
    for key, values in outliers.items():
        evaluation[f"auroc_{key}"] = scores.auroc(test, values)
        evaluation[f"detected_{key}"] = float(scores.anomalous(values, threshold).mean())
    spec = scores.spec(name, reconstruction)
    return ScoreCalibration(
        name=name,
        unit=spec.unit,
        description=spec.description,
        threshold_quantile=quantile,
        threshold=threshold,
        levels=levels.tolist(),
        quantiles=scores.quantiles(validation, levels).tolist(),
        evaluation=evaluation,
        per_class_thresholds=per_class(validation, best_class, classes, quantile, threshold),
    )


def pixel_calibration(
    normal: scores.Assessment, quantile: float, sigma: float, reconstruction: str, classes: int
) -> PixelCalibration:
    """The pixel threshold: the `quantile` of the validation images' largest map value, so
    that a normal image shows any anomalous pixel as often as it scores anomalous."""
    peaks = normal.maps.reshape(len(normal.maps), -1).max(axis=1)
    threshold = float(np.quantile(peaks, quantile))
    return PixelCalibration(
        unit="squared error" if reconstruction == "mse" else "nats",
        sigma=sigma,
        statistic=f"the {quantile:.0%} quantile of the validation images' largest pixel value",
        quantile=quantile,
        threshold=threshold,
        per_class=per_class(peaks, normal.best_class, classes, quantile, threshold),
    )


def per_class(
    values: np.ndarray, best_class: np.ndarray | None, classes: int, quantile: float, overall: float
) -> list[float] | None:
    """The `quantile` of `values` among the images each class explains best (conditional
    models), or the overall threshold for a class with too few such images to estimate it."""
    if best_class is None:
        return None
    enough = int(np.ceil(1 / (1 - quantile)))
    return [
        float(np.quantile(values[best_class == c], quantile))
        if (best_class == c).sum() >= enough
        else overall
        for c in range(classes)
    ]


def ink_range(validation: np.ndarray, quantile: float = 0.001) -> InkRange:
    """The validation images' ink between its tail quantiles, widened by half the distance to
    the ends (0 and 1): a digit's ink varies more than a thousand images show."""
    ink = scores.image_ink(validation)
    low, high = np.quantile(ink, [quantile, 1 - quantile])
    return InkRange(quantile=quantile, low=float(low / 2), high=float(high + (1 - high) / 2))


def noisy(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Images plus seeded Gaussian noise of std `sigma`, clipped to [0, 1]."""
    noise = np.random.default_rng(seed).standard_normal(images.shape)
    return np.clip(images + sigma * noise, 0.0, 1.0).astype(np.float32)


def evaluation_rows(calibration: Calibration) -> list[tuple[str, ScoreCalibration]]:
    """(title, score) pairs in the order the card and the docs show them."""
    rows = [("score", calibration.score)]
    if calibration.corrected is not None:
        rows.append(("corrected score", calibration.corrected))
    return rows


def draw_histogram(samples: ScoreSamples, calibration: Calibration, path: Path) -> Path:
    """One panel per score: the test split and each outlier set, the threshold as a line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = evaluation_rows(calibration)
    figure, axes = plt.subplots(len(rows), 1, figsize=(6.4, 3.2 * len(rows)), squeeze=False)
    for axis, (_, score) in zip(axes[:, 0], rows, strict=True):
        sets = {"test split": samples.test[score.name], **samples.outliers[score.name]}
        histogram_panel(axis, sets, score)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def histogram_panel(axis, sets: Mapping[str, np.ndarray], score: ScoreCalibration) -> None:
    """The scores of each set as a filled histogram (the middle 99 %), the threshold dashed."""
    low, high = np.percentile(np.concatenate(list(sets.values())), [0.5, 99.5])
    bins = np.linspace(low, high if high > low else low + 1, 60)
    for label, values in sets.items():
        axis.hist(
            np.clip(values, low, high),
            bins=bins,
            histtype="stepfilled",
            alpha=0.45,
            density=True,
            label=label,
        )
    axis.axvline(
        score.threshold,
        color="black",
        linestyle="--",
        label=f"threshold ({score.threshold_quantile:.0%} of validation)",
    )
    axis.set_xlabel(f"{score.name} ({score.unit})")
    axis.set_ylabel("density")
    axis.legend(fontsize=7)
