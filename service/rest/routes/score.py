"""POST /score: images in, anomaly scores out, judged against the model's calibration.

A thin translation: the images are read as every image route reads them, run through the
model's encoder and decoder, scored by `service.models.scores` (the module export calibrated with)
and compared with the threshold and quantiles of the manifest.
"""

from __future__ import annotations

import base64
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.asgi.routing import ModelRoute
from service.core.errors import NotCalibrated
from service.core.media import JSON, NPY, PNG
from service.models import scores
from service.models.manifest import Calibration, PixelCalibration, ScoreCalibration
from service.models.served import ServedModel
from service.rest import examples
from service.rest.deps import ModelName, served_model, settings_of
from service.rest.fragments import binary_outputs, image_body, problems
from service.rest.heatmaps import heatmap_pngs, maps_grid_png
from service.rest.inputs import read_images
from service.rest.responses import json_response, negotiate, npy_response
from service.rest.schemas import ScoreRequest, ScoreResponse

router = APIRouter(tags=["images"], route_class=ModelRoute)


ThresholdQuery = Annotated[
    float | None,
    Query(
        allow_inf_nan=False,
        description="Judge against this threshold instead of the calibrated one (the score's "
        "units).",
    ),
]


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Anomaly scores of images, and maps of where",
    description=(
        "Scores each image (higher = more unusual to the model): the reconstruction error for "
        "deterministic models, the negative ELBO for variational ones, in the units of the "
        "model's training loss; `corrected` subtracts the image's own Bernoulli entropy "
        "(an input-complexity correction). Each score comes with its percentile among the "
        "validation split's scores and whether it exceeds the threshold calibrated at export "
        "(their 99th percentile; conditional models: the threshold of the class that explains "
        "the image best; `threshold=` / `corrected_threshold=` override it). An image whose "
        "ink (mean pixel value) lies outside the validation images' range is anomalous "
        "whatever it scores (a blank image is easy to reconstruct). `maps=true` adds, per "
        "image, a heatmap of where it is anomalous (base64 PNG; per-pixel deviance in nats, "
        "or squared error) and the pixels above the pixel threshold (`pixel_threshold=` "
        "overrides it). `Accept: application/x-npy` answers a float64 array [N, 3] (score, "
        "percentile, anomalous as 0/1), [N, 6] with the corrected score's three columns "
        "after; with `maps=true` the float32 maps [N, H, W] instead. `Accept: image/png` "
        "answers one grid, a row per image: image | reconstruction | heatmap | mask. A model "
        "exported without calibration answers 409."
    ),
    openapi_extra=image_body("ScoreRequest", examples.SCORE),
    responses={
        200: {"content": binary_outputs(NPY, PNG)},
        **problems(404, 406, 409, 413, 415, 422, 503),
    },
)
async def score(
    request: Request,
    model_name: ModelName = None,
    maps: Annotated[bool, Query(description="Add per-pixel anomaly maps.")] = False,
    threshold: ThresholdQuery = None,
    corrected_threshold: ThresholdQuery = None,
    pixel_threshold: ThresholdQuery = None,
) -> Response:
    media = negotiate(request, (JSON, NPY, PNG))
    model = served_model(request, model_name)
    calibration = model.manifest.calibration
    if calibration is None:
        raise NotCalibrated(
            f"model {model.name} was exported without an anomaly-score calibration, so it has "
            "no threshold; re-export it (latentserve-train reexport) to calibrate it on its "
            "validation split"
        )
    with_maps = maps or media == PNG
    if with_maps and calibration.pixel is None:
        raise NotCalibrated(
            f"model {model.name} was calibrated before pixel maps existed, so it has no pixel "
            "threshold; re-export it (latentserve-train reexport) to calibrate its maps"
        )
    images, _ = await read_images(request, model.manifest.image, settings_of(request), ScoreRequest)
    parts = [part for part in (calibration.score, calibration.corrected) if part is not None]
    found = await _assess(model, [part.name for part in parts], images, with_maps)
    odd_ink = _outside_ink(calibration, images)
    overrides = (threshold, corrected_threshold)
    judged = [
        _judge(part, found, override, odd_ink)
        for part, override in zip(parts, overrides[: len(parts)], strict=True)
    ]
    if with_maps:
        pixels = _pixel_thresholds(calibration.pixel, found, pixel_threshold)
        if media == PNG:
            picture = maps_grid_png(
                images, found.reconstructions, found.maps, pixels, model.manifest.image
            )
            return Response(picture, media_type=PNG)
        if media == NPY:
            return npy_response(found.maps)
    if media == NPY:
        return npy_response(
            np.column_stack([column for part in judged for column in part["columns"]])
        )
    plain, *corrected = (part["json"] for part in judged)
    body = {
        "model": model.name,
        **plain,
        "corrected": corrected[0] if corrected else None,
        "classes": found.best_class,
        "ink": scores.image_ink(images),
        "ink_range": None
        if calibration.ink is None
        else [calibration.ink.low, calibration.ink.high],
    }
    if with_maps:
        body["maps"] = _maps_json(calibration.pixel, found.maps, pixels)
    return json_response(body)


async def _assess(
    model: ServedModel, names: list[str], images: np.ndarray, with_maps: bool
) -> scores.Assessment:
    """The scores (and maps) through the model's graphs; every class for conditional models."""
    rows, labels = images, None
    if model.manifest.conditional:
        rows, labels = scores.every_class(images, model.manifest.num_classes)
    encoding = await model.encode(rows, labels)
    outputs = {"mean": encoding.mean, **await model.decode_outputs(encoding.mean, labels)}
    if encoding.logvar is not None:
        outputs["logvar"] = encoding.logvar
    pixel = model.manifest.calibration.pixel
    return scores.assess(
        names,
        rows,
        outputs,
        count=len(images),
        reconstruction=str(model.manifest.training.get("reconstruction", "bce")),
        sigma=pixel.sigma if with_maps else None,
    )


def _outside_ink(calibration: Calibration, images: np.ndarray) -> np.ndarray:
    ink = scores.image_ink(images)
    if calibration.ink is None:
        return np.zeros(len(images), bool)
    return (ink < calibration.ink.low) | (ink > calibration.ink.high)


def _judge(
    calibration: ScoreCalibration,
    found: scores.Assessment,
    override: float | None,
    odd_ink: np.ndarray,
) -> dict:
    values = found.scores[calibration.name]
    thresholds = _thresholds(
        calibration.threshold,
        calibration.per_class_thresholds,
        found.best_class,
        override,
        len(values),
    )
    percentiles = scores.percentiles(values, calibration.levels, calibration.quantiles)
    flagged = scores.anomalous(values, thresholds) | odd_ink
    return {
        "json": {
            "score": calibration.name,
            "unit": calibration.unit,
            "description": calibration.description,
            "scores": values,
            "threshold": calibration.threshold if override is None else override,
            "thresholds": thresholds,
            "threshold_quantile": calibration.threshold_quantile,
            "percentiles": percentiles,
            "anomalous": flagged,
        },
        "columns": (values, percentiles, flagged.astype(np.float64)),
    }


def _thresholds(
    overall: float,
    per_class: list[float] | None,
    best_class: np.ndarray | None,
    override: float | None,
    count: int,
) -> np.ndarray:
    """[count]: the threshold each image is judged by: the override, its best class's (for
    conditional models), or the model's one."""
    if override is None and per_class is not None and best_class is not None:
        return np.asarray(per_class, np.float64)[best_class]
    return np.full(count, overall if override is None else override, np.float64)


def _pixel_thresholds(
    pixel: PixelCalibration, found: scores.Assessment, override: float | None
) -> np.ndarray:
    """[N, 1, 1]: each image's pixel threshold, broadcastable over its map."""
    chosen = _thresholds(
        pixel.threshold, pixel.per_class, found.best_class, override, len(found.maps)
    )
    return chosen.reshape(-1, 1, 1)


def _maps_json(pixel: PixelCalibration, maps: np.ndarray, thresholds: np.ndarray) -> dict:
    return {
        "unit": pixel.unit,
        "sigma": pixel.sigma,
        "statistic": pixel.statistic,
        "pixel_thresholds": thresholds.ravel(),
        "heatmaps": [
            base64.b64encode(png).decode("ascii") for png in heatmap_pngs(maps, thresholds)
        ],
        "anomalous_pixels": (maps > thresholds).reshape(len(maps), -1).sum(axis=1),
        "peaks": maps.reshape(len(maps), -1).max(axis=1),
    }
