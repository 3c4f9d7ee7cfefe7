"""The manifest: the whole contract between training/export and the service.

`training.export` writes `manifest.json` through this model and the service's registry
reads it back through the same model, so the two can never drift apart; both hash and verify
a folder's files with the functions at the end.
"""

from __future__ import annotations

import hashlib
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT_VERSION = 1
MODEL_FILES = ("encoder.onnx", "decoder.onnx", "encoder.pt", "decoder.pt")

Family = Literal["ae", "vae", "beta_vae", "cvae", "dae", "sparse_ae"]
Architecture = Literal["mlp", "conv"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSpec(_Strict):
    channels: Literal[1, 3]
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    value_range: tuple[float, float] = (0.0, 1.0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


class FileEntry(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class GraphSignature(_Strict):
    """Names of a graph's inputs and outputs, in order."""

    inputs: list[str]
    outputs: list[str]


class PriorSampler(_Strict):
    """z ~ N(0, I) scaled by the temperature."""

    kind: Literal["prior"] = "prior"


class MixtureSampler(_Strict):
    """A diagonal Gaussian mixture fitted on the training latents of a deterministic AE."""

    kind: Literal["gaussian_mixture"] = "gaussian_mixture"
    weights: list[float]
    means: list[list[float]]
    variances: list[list[float]]

    @model_validator(mode="after")
    def _consistent(self) -> MixtureSampler:
        k = len(self.weights)
        if k == 0 or len(self.means) != k or len(self.variances) != k:
            raise ValueError(
                "mixture weights, means and variances must have one entry per component"
            )
        if abs(sum(self.weights) - 1.0) > 1e-3:
            raise ValueError("mixture weights must sum to 1")
        return self


Sampler = Annotated[PriorSampler | MixtureSampler, Field(discriminator="kind")]


class DatasetInfo(_Strict):
    name: str
    source: str
    split: dict[str, str]  # e.g. {"train": "t10k images 0-7999", ...}
    sizes: dict[str, int]


class ScoreCalibration(_Strict):
    """One anomaly score's distribution on the validation split (service/models/scores.py)."""

    name: str  # a service.models.scores score: reconstruction, neg_elbo, neg_elbo_minus_complexity
    unit: str
    description: str
    threshold_quantile: float = Field(gt=0, lt=1)
    threshold: float  # the validation quantile at threshold_quantile; above it is anomalous
    levels: list[float]  # cumulative probabilities in [0, 1], increasing
    quantiles: list[float]  # the validation scores at those levels, non-decreasing
    # held-out figures: test_false_alarm_rate, auroc_<outlier set>, ...
    evaluation: dict[str, float] = {}
    # conditional models: the threshold for images best explained by each class, by class
    per_class_thresholds: list[float] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ScoreCalibration:
        if len(self.levels) < 2 or len(self.levels) != len(self.quantiles):
            raise ValueError("a calibration needs at least two levels and one quantile each")
        levels, values = self.levels, self.quantiles
        if any(b <= a for a, b in pairwise(levels)) or levels[0] < 0.0 or levels[-1] > 1.0:
            raise ValueError("calibration levels must increase within [0, 1]")
        if any(b < a for a, b in pairwise(values)):
            raise ValueError("calibration quantiles must not decrease")
        return self


class PixelCalibration(_Strict):
    """The threshold of the per-pixel anomaly maps (service/models/scores.pixel_maps)."""

    unit: str  # the map's units per pixel: nats or squared error
    sigma: float = Field(ge=0)  # the Gaussian smoothing of the maps, in pixels
    statistic: str  # how the threshold was taken, in words
    quantile: float = Field(gt=0, lt=1)
    threshold: float  # a pixel above it is anomalous
    per_class: list[float] | None = None  # conditional models: by the image's best class
    evaluation: dict[str, float] = {}  # the defect benchmark's figures, where it ran


class InkRange(_Strict):
    """The validation images' mean pixel value ("ink"): an image outside [low, high] is not
    like the data whatever it scores (a blank image is easy to reconstruct)."""

    quantile: float = Field(gt=0, lt=0.5)  # low and high are these tail quantiles, widened
    low: float
    high: float


class Calibration(_Strict):
    """Anomaly scores calibrated at export on the validation split.

    `score` is the model's score; `corrected` a complexity-corrected one beside it, for models
    whose plain score misjudges simple images (see docs/export.md); `pixel` the threshold of
    the per-pixel maps; `ink` the range of ink the data's images hold.
    """

    split: str  # "validation"
    images: int = Field(gt=0)
    score: ScoreCalibration
    corrected: ScoreCalibration | None = None
    pixel: PixelCalibration | None = None
    ink: InkRange | None = None


class Manifest(_Strict):
    format_version: Literal[1] = FORMAT_VERSION
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    family: Family
    architecture: Architecture
    variational: bool
    conditional: bool
    image: ImageSpec
    latent_dim: int = Field(gt=0)
    classes: list[str] | None = None  # class names, index = label id
    encoder: GraphSignature
    decoder: GraphSignature
    files: dict[str, FileEntry]  # every file of the folder but manifest.json, with its hash
    onnx_opset: int
    sampler: Sampler
    dataset: DatasetInfo
    metrics: dict[str, float]  # test-split metrics
    training: dict[str, str | int | float | bool | None]
    parity: dict[str, float]  # largest |difference| per format against PyTorch, and the tolerance
    reference: str | None = None  # file name of the reference set (latent map, class means)
    calibration: Calibration | None = None  # absent: exported before calibration existed
    created: str  # ISO-8601 timestamp

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        missing = [f for f in MODEL_FILES if f not in self.files]
        if missing:
            raise ValueError(f"manifest lists no entry for {', '.join(missing)}")
        if self.conditional and not self.classes:
            raise ValueError("a conditional model must name its classes")
        if isinstance(self.sampler, MixtureSampler) and any(
            len(m) != self.latent_dim for m in self.sampler.means
        ):
            raise ValueError("mixture means must have latent_dim entries")
        if self.reference is not None and self.reference not in self.files:
            raise ValueError("the reference file must be listed in files")
        return self

    @property
    def num_classes(self) -> int:
        return len(self.classes or [])

    def item_shape(self, tensor: str) -> tuple[int, ...]:
        """The shape of one batch item of a graph's tensor, by the tensor's name."""
        if tensor in ("image", "logits"):
            return self.image.shape
        if tensor == "label":
            return (self.num_classes,)
        return (self.latent_dim,)  # latent, mean, logvar


class ReferenceSet(_Strict):
    """Contents of the reference file: a 2-D latent map and per-class latent means.

    points = (latent - projection_mean) @ projection_components.T, so a point picked on the map
    maps back to a latent as projection_mean + point @ projection_components (exact for 2-D
    latents, where the projection is the identity).
    """

    projection: Literal["identity", "pca"]
    projection_mean: list[float]
    projection_components: list[list[float]]  # [2, latent_dim]
    # Pairs as 2-item arrays, not tuples: JSON Schema tuples (prefixItems) trip OpenAPI tools.
    points: list[Annotated[list[float], Field(min_length=2, max_length=2)]]
    labels: list[int]
    class_means: list[list[float]] | None = None  # [num_classes, latent_dim]


# ---- the files of a model folder: written by export, verified by export and the registry -------

MANIFEST_FILE = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(folder: Path) -> dict[str, FileEntry]:
    """sha256 and size of every file below `folder` except the manifest, by relative path."""
    entries = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative != MANIFEST_FILE:
            entries[relative] = FileEntry(sha256=sha256_of(path), bytes=path.stat().st_size)
    return entries


def file_problem(folder: Path, name: str, entry: FileEntry) -> str | None:
    """Why the file `name` of `folder` does not match its manifest entry; None when it does."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        return f"{name} lies outside the model folder"
    if not path.is_file():
        return f"{name} is missing"
    size = path.stat().st_size
    if size != entry.bytes:
        return f"{name} has {size} bytes; the manifest says {entry.bytes}"
    if sha256_of(path) != entry.sha256:
        return f"{name} does not match its sha256 in the manifest"
    return None
