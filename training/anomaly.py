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
from service.models.manifest import Calibration, ScoreCalibration

DEFAULT_QUANTILE = 0.99
NOISE_SIGMA = 0.5
NOISE_SET = f"gaussian_noise_{NOISE_SIGMA:g}"
OUTLIER_IMAGES = 2000  # outlier images per set, at most (the first of its test split)
BATCH = 200  # images per graph call (times the classes of a conditional model)


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
        self.decoder_outputs = [output.name for output in self.decoder.get_outputs()]
        self.variational = variational
        self.num_classes = num_classes
        self.reconstruction = reconstruction

    def score_names(self) -> tuple[str, str | None]:
        """The model's score and its complexity-corrected one (Bernoulli likelihoods only)."""
        plain = "neg_elbo" if self.variational else "reconstruction"
        return plain, scores.CORRECTED[plain] if self.reconstruction == "bce" else None

    def __call__(self, name: str, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        return np.concatenate(
            [self._batch(name, images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
        )

    def _batch(self, name: str, images: np.ndarray) -> np.ndarray:
        if not self.num_classes:
            return self._score(name, images, {})
        tiled, labels = scores.every_class(images, self.num_classes)
        onehot = np.eye(self.num_classes, dtype=np.float32)[labels]
        return scores.lowest_over_classes(self._score(name, tiled, {"label": onehot}), len(images))

    def _score(self, name: str, images: np.ndarray, label: dict) -> np.ndarray:
        outputs = self.encoder.run(None, {"image": images, **label})
        mean = outputs[0]
        logvar = outputs[1] if self.variational else None
        outputs = self.decoder.run(None, {"latent": mean, **label})
        decoded = dict(zip(self.decoder_outputs, outputs, strict=True))
        return scores.compute(
            name,
            images,
            decoded["image"],
            mean,
            logvar,
            self.reconstruction,
            logits=decoded.get("logits"),
        )


def calibrate(
    scorer: GraphScorer,
    validation: np.ndarray,
    test: np.ndarray,
    outliers: Mapping[str, np.ndarray],
    *,
    quantile: float = DEFAULT_QUANTILE,
    seed: int = 0,
) -> tuple[Calibration, ScoreSamples]:
    """The calibration (threshold and quantiles on `validation`, figures on `test` and the
    outlier sets, plus `test` under Gaussian noise) and the held-out scores behind it."""
    held_out = {**outliers, NOISE_SET: noisy(test, NOISE_SIGMA, seed)}
    samples = ScoreSamples()
    calibrated = {}
    for name in filter(None, scorer.score_names()):
        samples.test[name] = scorer(name, test)
        samples.outliers[name] = {key: scorer(name, images) for key, images in held_out.items()}
        calibrated[name] = score_calibration(
            name,
            scorer(name, validation),
            samples.test[name],
            samples.outliers[name],
            quantile=quantile,
            reconstruction=scorer.reconstruction,
        )
    plain, fixed = scorer.score_names()
    calibration = Calibration(
        split="validation",
        images=len(validation),
        score=calibrated[plain],
        corrected=calibrated[fixed] if fixed else None,
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
    )


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
        test = samples.test[score.name]
        sets = {"test split": test, **samples.outliers[score.name]}
        low, high = np.percentile(np.concatenate(list(sets.values())), [0.5, 99.5])
        bins = np.linspace(low, high, 60)
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
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
