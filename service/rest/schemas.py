"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from service.core.media import PNG
from service.models.latents import LATENT_LIMIT, Method
from service.models.manifest import Calibration

# Seeds are echoed in responses: they must fit a signed 64-bit integer, as JSON libraries and
# numpy read them (orjson refuses larger integers).
SEED_MAX = 2**63 - 1

Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
Label = Annotated[int, Field(ge=0, description="A class index of a conditional model.")]
LatentValue = Annotated[float, Field(ge=-LATENT_LIMIT, le=LATENT_LIMIT, allow_inf_nan=False)]
Base64Image = Annotated[
    str,
    Field(
        description="A base64 PNG (JPEG and the other formats Pillow reads are accepted too; a "
        "`data:image/...;base64,` prefix is allowed), of any size: it is scaled to fit the "
        "model's size, aspect ratio kept, centred on black.",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": PNG},
    ),
]
_ROWS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
# Checked as numbers by numpy, not here: its messages name the shape that was wrong.
NestedImage = Annotated[
    list[Any],
    WithJsonSchema(
        {
            "anyOf": [_ROWS, {"type": "array", "items": _ROWS}],
            "description": "A nested list [H][W] or [C][H][W] of numbers in the model's range.",
        }
    ),
]
ImageItem = Base64Image | NestedImage
IMAGE_ITEM_DOC = "Each image a base64 PNG, or a nested list [H][W] / [C][H][W] of numbers."
ImageOut = str | list[Any]
IMAGE_OUT_DOC = "Base64 PNG, or a nested list [C][H][W] with `output=array`."


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImagesRequest(_Request):
    images: list[ImageItem] = Field(min_length=1, description=IMAGE_ITEM_DOC)
    labels: list[Label] | None = Field(
        None, description="Conditional models: one class per image, or one for all."
    )


class ScoreRequest(_Request):
    images: list[ImageItem] = Field(min_length=1, description=IMAGE_ITEM_DOC)


class EncodeRequest(ImagesRequest):
    sample: bool | None = Field(
        None, description="Return z = mean + exp(logvar/2)·ε instead of the mean (variational)."
    )
    seed: Seed | None = Field(None, description="Seed of ε when `sample` is true.")


class DecodeRequest(_Request):
    latents: list[list[LatentValue]] = Field(
        min_length=1, description="Latent vectors [N][latent_dim]."
    )
    labels: list[Label] | None = Field(
        None, description="Conditional models: one class per latent, or one for all."
    )


class Endpoint(_Request):
    image: ImageItem | None = Field(None, description=IMAGE_ITEM_DOC)
    latent: list[LatentValue] | None = Field(
        None, description="A latent vector of latent_dim values."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Endpoint:
        if (self.image is None) == (self.latent is None):
            raise ValueError("give exactly one of `image` and `latent`")
        return self


class InterpolateRequest(_Request):
    start: Endpoint
    end: Endpoint
    steps: int | None = Field(
        None, ge=2, description="Frames, both ends included; the query's `steps` when left out."
    )
    method: Method | None = Field(None, description="The query's `method` when left out.")
    label: Label | None = Field(None, description="Conditional models: the class of every frame.")


class EncodeResponse(BaseModel):
    model: str
    latent_dim: int
    latents: list[list[float]] = Field(description="The mean, or a sampled z with `sample`.")
    mean: list[list[float]] | None = Field(None, description="Variational models only.")
    logvar: list[list[float]] | None = Field(None, description="Variational models only.")
    seed: Seed | None = Field(None, description="The seed of ε when `sample` was asked for.")


class ImagesResponse(BaseModel):
    model: str
    images: list[ImageOut] = Field(description=IMAGE_OUT_DOC)
    shape: list[int] = Field(description="[N, C, H, W] of the images.")


class DecodeResponse(ImagesResponse):
    pass


class SampleResponse(ImagesResponse):
    seed: Seed
    temperature: float
    latents: list[list[float]]
    labels: list[int] | None = None


class InterpolateResponse(ImagesResponse):
    method: Method
    latents: list[list[float]]


class ReconstructResponse(ImagesResponse):
    latents: list[list[float]] = Field(description="The encoder's mean (or latent) per image.")
    mse: list[float] = Field(description="Mean squared error per image, in the model's range.")


class ScoreResult(BaseModel):
    score: str = Field(description="The score's name (docs/export.md defines each).")
    unit: str
    description: str
    scores: list[float] = Field(description="One per image; higher is more anomalous.")
    threshold: float = Field(
        description="Above it an image is anomalous: the calibrated one, or the override."
    )
    thresholds: list[float] = Field(
        description="The threshold each image was judged by (conditional models: that of "
        "the class explaining it best, unless overridden)."
    )
    threshold_quantile: float = Field(
        description="The threshold is this quantile of the validation split's scores."
    )
    percentiles: list[float] = Field(
        description="Where each score falls among the validation split's scores, 0-100."
    )
    anomalous: list[bool] = Field(
        description="score > its threshold, or ink outside the validation range, per image."
    )


class ScoreMaps(BaseModel):
    unit: str = Field(description="The maps' units per pixel: nats (deviance) or squared error.")
    sigma: float = Field(description="The Gaussian smoothing of the maps, in pixels.")
    statistic: str = Field(description="How the pixel threshold was calibrated.")
    pixel_thresholds: list[float] = Field(description="Per image: above it a pixel is anomalous.")
    heatmaps: list[str] = Field(
        description="Per image, base64 PNG (RGB, the image's size): black 0, the threshold "
        "mid-ramp, twice it and above pale yellow."
    )
    anomalous_pixels: list[int] = Field(description="Per image, pixels above its threshold.")
    peaks: list[float] = Field(description="Per image, its largest map value.")


class ScoreResponse(ScoreResult):
    model: str
    corrected: ScoreResult | None = Field(
        description="The input-complexity-corrected score, for models trained with a "
        "Bernoulli (BCE) likelihood; null otherwise."
    )
    classes: list[int] | None = Field(
        description="Conditional models: the class that explains each image best."
    )
    ink: list[float] = Field(description="Each image's mean pixel value.")
    ink_range: list[float] | None = Field(
        description="[low, high]: the validation images' ink range; outside it is anomalous."
    )
    maps: ScoreMaps | None = Field(None, description="With maps=true: where each image is odd.")


class TensorInfo(BaseModel):
    name: str
    shape: list[int | str]


class SamplerInfo(BaseModel):
    kind: Literal["prior", "gaussian_mixture"]
    components: int | None = None


class ModelInfo(BaseModel):
    name: str
    description: str
    family: str
    architecture: str
    variational: bool
    conditional: bool
    latent_dim: int
    image: dict[str, Any]
    classes: list[str] | None
    backend: str
    provider: str = Field(description="The execution provider or device actually in use.")
    inputs: dict[str, list[TensorInfo]]
    outputs: dict[str, list[TensorInfo]]
    sampler: SamplerInfo
    dataset: dict[str, Any]
    metrics: dict[str, float]
    parity: dict[str, float]
    has_reference: bool
    calibration: Calibration | None = Field(
        None,
        description="Anomaly-score thresholds and validation quantiles (POST /score); "
        "null for a model exported without them.",
    )
    created: str


class FailedModelInfo(BaseModel):
    name: str
    reason: str


class Limits(BaseModel):
    """The server's request limits (settings), so a client can refuse what would be refused."""

    max_body_bytes: int = Field(description="Largest request body; a larger one is a 413.")
    max_images: int = Field(description="Images (or latents) per request.")
    max_image_pixels: int = Field(description="Width x height of one uploaded image.")
    max_steps: int = Field(description="Frames of one interpolation.")
    max_samples: int = Field(description="Largest n of /sample.")


class ModelList(BaseModel):
    default: str | None
    models: list[ModelInfo]
    failed: list[FailedModelInfo]
    limits: Limits


class Readiness(BaseModel):
    ready: bool
    models: list[str]
    failed: list[FailedModelInfo]
    detail: str | None = None


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"
