"""What the endpoints answer, as typed values with numpy arrays and PIL images."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from client.images import array_to_pil, decode_png, pil_from_png, pil_to_array, png_bytes


@dataclass(frozen=True)
class ImageBatch:
    """Images as the server sent them: PNG bytes (the default) or float arrays."""

    pngs: list[bytes] | None = None
    arrays: np.ndarray | None = None  # float32 [N,C,H,W]

    @classmethod
    def from_json(cls, items: list[Any]) -> ImageBatch:
        if all(isinstance(item, str) for item in items):
            return cls(pngs=[decode_png(item) for item in items])
        arrays = [np.asarray(item, dtype=np.float32) for item in items]
        return cls(arrays=np.stack([a if a.ndim == 3 else a[None] for a in arrays]))

    def __len__(self) -> int:
        return len(self.pngs) if self.pngs is not None else len(self.arrays)

    def pil(self) -> list[Image.Image]:
        if self.pngs is not None:
            return [pil_from_png(png) for png in self.pngs]
        return [array_to_pil(array) for array in self.arrays]

    def numpy(self) -> np.ndarray:
        """float32 [N,C,H,W] in 0..1 (quantized to 1/255 when the server sent PNGs)."""
        if self.arrays is not None:
            return self.arrays
        return np.stack([pil_to_array(image) for image in self.pil()])

    def png(self, index: int) -> bytes:
        if self.pngs is not None:
            return self.pngs[index]
        return png_bytes(array_to_pil(self.arrays[index]))

    def save(self, folder: str | Path, names: list[str]) -> list[Path]:
        """Writes image i to folder/names[i] (PNG), returns the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / name for name in names]
        for index, path in enumerate(paths):
            path.write_bytes(self.png(index))
        return paths


def _matrix(values: list[list[float]] | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=np.float32)


@dataclass(frozen=True)
class ScoreResult:
    """One anomaly score per image, judged against the model's validation split."""

    score: str  # the score's name, e.g. neg_elbo
    unit: str
    description: str
    scores: np.ndarray  # [N] float64; higher is more anomalous
    threshold: float
    threshold_quantile: float
    percentiles: np.ndarray  # [N] in 0..100
    anomalous: np.ndarray  # [N] bool

    @classmethod
    def from_json(cls, body: dict) -> ScoreResult:
        return cls(
            score=body["score"],
            unit=body["unit"],
            description=body["description"],
            scores=np.asarray(body["scores"], dtype=np.float64),
            threshold=float(body["threshold"]),
            threshold_quantile=float(body["threshold_quantile"]),
            percentiles=np.asarray(body["percentiles"], dtype=np.float64),
            anomalous=np.asarray(body["anomalous"], dtype=bool),
        )


@dataclass(frozen=True)
class ScoreMaps:
    """Where each image is anomalous (POST /score?maps=true); the float maps themselves come
    from `Client.score_maps`."""

    unit: str  # per pixel: nats or squared error
    sigma: float
    pixel_thresholds: np.ndarray  # [N]
    heatmaps: list[bytes]  # PNG files, one per image
    anomalous_pixels: np.ndarray  # [N] int
    peaks: np.ndarray  # [N] largest map value

    @classmethod
    def from_json(cls, body: dict) -> ScoreMaps:
        return cls(
            unit=body["unit"],
            sigma=float(body["sigma"]),
            pixel_thresholds=np.asarray(body["pixel_thresholds"], dtype=np.float64),
            heatmaps=[base64.b64decode(text) for text in body["heatmaps"]],
            anomalous_pixels=np.asarray(body["anomalous_pixels"], dtype=np.int64),
            peaks=np.asarray(body["peaks"], dtype=np.float64),
        )


@dataclass(frozen=True)
class Scores(ScoreResult):
    """POST /score: the model's score, and its complexity-corrected one where it has one."""

    model: str = ""
    corrected: ScoreResult | None = None
    classes: np.ndarray | None = None  # conditional models: each image's best class
    maps: ScoreMaps | None = None

    @classmethod
    def from_json(cls, body: dict) -> Scores:
        plain = ScoreResult.from_json(body)
        corrected, maps, classes = body.get("corrected"), body.get("maps"), body.get("classes")
        return cls(
            **vars(plain),
            model=body["model"],
            corrected=ScoreResult.from_json(corrected) if corrected else None,
            classes=None if classes is None else np.asarray(classes, dtype=np.int64),
            maps=ScoreMaps.from_json(maps) if maps else None,
        )


@dataclass(frozen=True)
class Encoding:
    model: str
    latent_dim: int
    latents: np.ndarray  # [N, latent_dim]: the mean, or a sampled z when asked
    mean: np.ndarray | None = None
    logvar: np.ndarray | None = None

    @classmethod
    def from_json(cls, body: dict) -> Encoding:
        return cls(
            model=body["model"],
            latent_dim=int(body["latent_dim"]),
            latents=_matrix(body["latents"]),
            mean=_matrix(body.get("mean")),
            logvar=_matrix(body.get("logvar")),
        )


@dataclass(frozen=True)
class Decoded:
    model: str
    images: ImageBatch

    @classmethod
    def from_json(cls, body: dict) -> Decoded:
        return cls(model=body["model"], images=ImageBatch.from_json(body["images"]))


@dataclass(frozen=True)
class Samples:
    model: str
    seed: int | None
    images: ImageBatch
    latents: np.ndarray

    @classmethod
    def from_json(cls, body: dict) -> Samples:
        return cls(
            model=body["model"],
            seed=body.get("seed"),
            images=ImageBatch.from_json(body["images"]),
            latents=_matrix(body["latents"]),
        )


@dataclass(frozen=True)
class Interpolation:
    model: str
    method: str
    images: ImageBatch
    latents: np.ndarray

    @classmethod
    def from_json(cls, body: dict) -> Interpolation:
        return cls(
            model=body["model"],
            method=body["method"],
            images=ImageBatch.from_json(body["images"]),
            latents=_matrix(body["latents"]),
        )


@dataclass(frozen=True)
class Reconstruction:
    model: str
    images: ImageBatch
    latents: np.ndarray
    mse: np.ndarray  # [N]

    @classmethod
    def from_json(cls, body: dict) -> Reconstruction:
        return cls(
            model=body["model"],
            images=ImageBatch.from_json(body["images"]),
            latents=_matrix(body["latents"]),
            mse=np.asarray(body["mse"], dtype=np.float32),
        )


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    architecture: str
    variational: bool
    conditional: bool
    latent_dim: int
    classes: list[str] | None
    backend: str | None
    provider: str | None
    raw: dict = field(repr=False)  # every field the server sent

    @classmethod
    def from_json(cls, body: dict) -> ModelInfo:
        return cls(
            name=body["name"],
            family=body["family"],
            architecture=body["architecture"],
            variational=bool(body["variational"]),
            conditional=bool(body["conditional"]),
            latent_dim=int(body["latent_dim"]),
            classes=body.get("classes"),
            backend=body.get("backend"),
            provider=body.get("provider"),
            raw=body,
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        image = self.raw["image"]
        return (image["channels"], image["height"], image["width"])


@dataclass(frozen=True)
class ModelList:
    default: str | None
    models: list[ModelInfo]
    failed: list[dict]  # [{"name", "reason"}]

    @classmethod
    def from_json(cls, body: dict) -> ModelList:
        return cls(
            default=body.get("default"),
            models=[ModelInfo.from_json(m) for m in body["models"]],
            failed=list(body.get("failed", [])),
        )

    def names(self) -> list[str]:
        return [m.name for m in self.models]


@dataclass(frozen=True)
class ReferenceMap:
    """A model's 2-D latent map: points coloured by label, and the way back to latents."""

    projection: str
    projection_mean: np.ndarray  # [latent_dim]
    projection_components: np.ndarray  # [2, latent_dim]
    points: np.ndarray  # [N, 2]
    labels: np.ndarray  # [N]
    class_means: np.ndarray | None  # [num_classes, latent_dim]

    @classmethod
    def from_json(cls, body: dict) -> ReferenceMap:
        return cls(
            projection=body["projection"],
            projection_mean=np.asarray(body["projection_mean"], dtype=np.float32),
            projection_components=_matrix(body["projection_components"]),
            points=_matrix(body["points"]).reshape(-1, 2),
            labels=np.asarray(body["labels"], dtype=np.int64),
            class_means=_matrix(body.get("class_means")),
        )

    def to_latent(self, points: np.ndarray) -> np.ndarray:
        """Map points [N,2] (or one [2]) back to latent vectors."""
        return self.projection_mean + np.asarray(points, np.float32) @ self.projection_components
