"""POST /interpolate: frames between two images or two latents, linear or spherical."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service import examples
from service.codecs import image_from_bytes, latents_from_values
from service.core.errors import BadInput
from service.core.settings import Settings
from service.inference import ServedModel
from service.inputs import JSON as JSON_IN
from service.inputs import (
    MULTIPART,
    image_from_item,
    media_type,
    read_files,
    read_json,
    unsupported,
)
from service.latents import Method, interpolate
from service.responses import JSON, NPY, PNG, images_response, negotiate
from service.routes.deps import ModelDep, OutputQuery, SettingsDep
from service.routes.docs import BINARY, binary_outputs, body, json_content, problems
from service.schemas import Endpoint, InterpolateRequest, InterpolateResponse

router = APIRouter(tags=["latents"])

MULTIPART_DOC = {
    "schema": {
        "type": "object",
        "properties": {"start": BINARY, "end": BINARY},
        "required": ["start", "end"],
    }
}


@router.post(
    "/interpolate",
    response_model=InterpolateResponse,
    summary="Frames between two images or two latents",
    description=(
        "Encodes image ends to their mean latent, walks `steps` frames from start to end (both "
        "included; `linear`, or `spherical` along the great circle) and decodes each. The first "
        "and last frames are the ends' reconstructions. `Accept: image/png` answers one strip."
    ),
    openapi_extra=body(
        {**json_content("InterpolateRequest", examples.INTERPOLATE), MULTIPART: MULTIPART_DOC},
        "JSON ends (an image or a latent each), or multipart files `start` and `end` with "
        "`steps`, `method` and `label` in the query.",
    ),
    responses={
        200: {"content": binary_outputs(PNG, NPY)},
        **problems(404, 406, 413, 415, 422, 503),
    },
)
async def interpolate_frames(
    request: Request,
    model: ModelDep,
    settings: SettingsDep,
    steps: Annotated[int, Query(ge=2, description="Frames, both ends included.")] = 8,
    method: Annotated[Method, Query(description="linear or spherical")] = "linear",
    label: Annotated[int | None, Query(description="Conditional models: the class.")] = None,
    output: OutputQuery = "png",
) -> Response:
    media = negotiate(request, (JSON, PNG, NPY))
    kind = media_type(request)
    if kind == JSON_IN:
        payload = await read_json(request, InterpolateRequest)
        steps, method = payload.steps, payload.method
        label = payload.label if payload.label is not None else label
        ends = [payload.start, payload.end]
    elif kind == MULTIPART:
        ends = await _uploaded_ends(request, settings)
    else:
        raise unsupported(request, (JSON_IN, MULTIPART))
    if steps > settings.max_steps:
        raise BadInput(f"steps={steps} is over the limit of {settings.max_steps}")
    labels = model.check_labels(None if label is None else [label], steps)
    latents, images = await run_in_threadpool(_frames, model, settings, ends, steps, method, labels)
    payload_out = {"model": model.name, "method": method, "latents": latents}
    return images_response(
        media, payload_out, images, model.manifest.image, encoding=output, layout="strip"
    )


async def _uploaded_ends(request: Request, settings: Settings) -> list[bytes]:
    files = await read_files(request, ("start", "end"), max_files=3)
    if len(files["start"]) != 1 or len(files["end"]) != 1:
        raise BadInput("send exactly one file in each of the multipart fields `start` and `end`")
    return [files["start"][0], files["end"][0]]


def _frames(
    model: ServedModel,
    settings: Settings,
    ends: list[Endpoint] | list[bytes],
    steps: int,
    method: Method,
    labels: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    start, end = (_end_latent(model, settings, e, labels) for e in ends)
    latents = interpolate(start, end, steps, method)
    return latents, model.decode(latents, labels)


def _end_latent(
    model: ServedModel, settings: Settings, end: Endpoint | bytes, labels: np.ndarray | None
) -> np.ndarray:
    manifest = model.manifest
    if isinstance(end, Endpoint) and end.latent is not None:
        return latents_from_values([end.latent], manifest.latent_dim, 1)[0]
    if isinstance(end, bytes):
        image = image_from_bytes(end, manifest.image, settings.max_image_pixels)
    else:
        image = image_from_item(end.image, manifest.image, settings)
    one_label = None if labels is None else labels[:1]
    return model.encode(image[None], one_label).mean[0]
