"""POST /score: images in, anomaly scores out, judged against the model's calibration.

A thin translation: the images are read as every image route reads them, run through the
model's encoder and decoder, scored by `service.models.scores` (the module export calibrated with)
and compared with the threshold and quantiles of the manifest.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from service.asgi.routing import ModelRoute
from service.core.errors import ApiError
from service.models import scores
from service.models.manifest import ScoreCalibration
from service.models.served import ServedModel
from service.rest import examples
from service.rest.deps import ModelName, served_model, settings_of
from service.rest.fragments import binary_outputs, image_body, problems
from service.rest.inputs import read_images
from service.rest.responses import JSON, NPY, json_response, negotiate, npy_response
from service.rest.schemas import ScoreRequest, ScoreResponse

router = APIRouter(tags=["images"], route_class=ModelRoute)


class NotCalibrated(ApiError):
    status = 409


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Anomaly scores of images",
    description=(
        "Scores each image (higher = more unusual to the model): the reconstruction error for "
        "deterministic models, the negative ELBO for variational ones, in the units of the "
        "model's training loss; `corrected` subtracts the image's own Bernoulli entropy "
        "(an input-complexity correction). Each score comes with its percentile among the "
        "validation split's scores and whether it exceeds the threshold calibrated at export "
        "(their 99th percentile). Conditional models score every class and keep the lowest. "
        "`Accept: application/x-npy` answers a float64 array [N, 3] (score, percentile, "
        "anomalous as 0/1), [N, 6] with the corrected score's three columns after. A model "
        "exported without calibration answers 409."
    ),
    openapi_extra=image_body("ScoreRequest", examples.SCORE),
    responses={
        200: {"content": binary_outputs(NPY)},
        **problems(404, 406, 409, 413, 415, 422, 503),
    },
)
async def score(request: Request, model_name: ModelName = None) -> Response:
    media = negotiate(request, (JSON, NPY))
    model = served_model(request, model_name)
    calibration = model.manifest.calibration
    if calibration is None:
        raise NotCalibrated(
            f"model {model.name} was exported without an anomaly-score calibration, so it has "
            "no threshold; re-export it (latentserve-train export) to calibrate it on its "
            "validation split"
        )
    images, _ = await read_images(request, model.manifest.image, settings_of(request), ScoreRequest)
    judged = [
        _judge(part, await _score(model, part.name, images))
        for part in (calibration.score, calibration.corrected)
        if part is not None
    ]
    if media == NPY:
        return npy_response(
            np.column_stack([column for part in judged for column in part["columns"]])
        )
    plain, *corrected = (part["json"] for part in judged)
    return json_response(
        {"model": model.name, **plain, "corrected": corrected[0] if corrected else None}
    )


async def _score(model: ServedModel, name: str, images: np.ndarray) -> np.ndarray:
    """The score per image through the model's graphs; every class for conditional models."""
    count, labels = len(images), None
    if model.manifest.conditional:
        images, labels = scores.every_class(images, model.manifest.num_classes)
    encoding = await model.encode(images, labels)
    decoded = await model.decode_outputs(encoding.mean, labels)
    reconstruction = str(model.manifest.training.get("reconstruction", "bce"))
    values = scores.compute(
        name,
        images,
        decoded["image"],
        encoding.mean,
        encoding.logvar,
        reconstruction,
        logits=decoded.get("logits"),
    )
    return scores.lowest_over_classes(values, count)


def _judge(calibration: ScoreCalibration, values: np.ndarray) -> dict:
    percentiles = scores.percentiles(values, calibration.levels, calibration.quantiles)
    flagged = scores.anomalous(values, calibration.threshold)
    return {
        "json": {
            "score": calibration.name,
            "unit": calibration.unit,
            "description": calibration.description,
            "scores": values,
            "threshold": calibration.threshold,
            "threshold_quantile": calibration.threshold_quantile,
            "percentiles": percentiles,
            "anomalous": flagged,
        },
        "columns": (values, percentiles, flagged.astype(np.float64)),
    }
