"""POST /interpolate: frames between two images or two latents, linear or spherical."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.asgi.routing import ModelRoute
from service.core.errors import BadInput
from service.core.media import JSON, MULTIPART, NPY, PNG
from service.core.settings import Settings
from service.models.latents import Method, interpolate
from service.models.served import ServedModel
from service.rest import examples
from service.rest.codecs import image_from_bytes, latents_from_values
from service.rest.deps import ModelName, OutputQuery, served_model, settings_of
from service.rest.fragments import BINARY, binary_outputs, body, json_content, problems
from service.rest.inputs import (
    image_from_item,
    media_type,
    read_files,
    read_json,
    unsupported,
)
from service.rest.responses import images_response, negotiate
from service.rest.schemas import Endpoint, InterpolateRequest, InterpolateResponse

router = APIRouter(tags=["latents"], route_class=ModelRoute)

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
    steps: Annotated[int, Query(ge=2, description="Frames, both ends included.")] = 8,
    method: Annotated[Method, Query(description="linear or spherical")] = "linear",
    label: Annotated[int | None, Query(ge=0, description="Conditional models: the class.")] = None,
    output: OutputQuery = "png",
    model_name: ModelName = None,
) -> Response:
    media = negotiate(request, (JSON, PNG, NPY))
    model = served_model(request, model_name)
    settings = settings_of(request)
    _check_steps(steps, settings)
    kind = media_type(request)
    if kind == JSON:
        payload = await read_json(request, InterpolateRequest)
        steps = payload.steps if payload.steps is not None else steps
        method = payload.method if payload.method is not None else method
        label = payload.label if payload.label is not None else label
        ends = [payload.start, payload.end]
        _check_steps(steps, settings)
    elif kind == MULTIPART:
        ends = await _uploaded_ends(request, settings)
    else:
        raise unsupported(request, (JSON, MULTIPART))
    labels = model.check_labels(None if label is None else [label], steps)
    latents, images = await _frames(model, settings, ends, steps, method, labels)
    payload_out = {"model": model.name, "method": method, "latents": latents}
    return images_response(
        media, payload_out, images, model.manifest.image, encoding=output, layout="strip"
    )


def _check_steps(steps: int, settings: Settings) -> None:
    if steps > settings.max_steps:
        raise BadInput(f"steps={steps} is over the limit of {settings.max_steps}")


async def _uploaded_ends(request: Request, settings: Settings) -> list[bytes]:
    files = await read_files(request, ("start", "end"), max_files=3)
    if len(files["start"]) != 1 or len(files["end"]) != 1:
        raise BadInput("send exactly one file in each of the multipart fields `start` and `end`")
    return [files["start"][0], files["end"][0]]


async def _frames(
    model: ServedModel,
    settings: Settings,
    ends: list[Endpoint] | list[bytes],
    steps: int,
    method: Method,
    labels: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    start, end = await _end_latents(model, settings, ends, labels)
    latents = interpolate(start, end, steps, method)
    return latents, await model.decode(latents, labels)


async def _end_latents(
    model: ServedModel,
    settings: Settings,
    ends: list[Endpoint] | list[bytes],
    labels: np.ndarray | None,
) -> list[np.ndarray]:
    """Both ends as latent vectors: given latents as they are, images through one encoder call."""
    latent_dim = model.manifest.latent_dim
    latents: list[np.ndarray | None] = [
        latents_from_values([end.latent], latent_dim, 1)[0]
        if isinstance(end, Endpoint) and end.latent is not None
        else None
        for end in ends
    ]
    missing = [index for index, latent in enumerate(latents) if latent is None]
    if missing:
        images = await run_in_threadpool(
            _end_images, [ends[index] for index in missing], model, settings
        )
        some_labels = None if labels is None else labels[: len(missing)]
        means = (await model.encode(images, some_labels)).mean
        for index, mean in zip(missing, means, strict=True):
            latents[index] = mean
    return latents  # type: ignore[return-value]


def _end_images(ends: list[Endpoint | bytes], model: ServedModel, settings: Settings) -> np.ndarray:
    spec = model.manifest.image
    return np.stack(
        [
            image_from_bytes(end, spec, settings.max_image_pixels)
            if isinstance(end, bytes)
            else image_from_item(end.image, spec, settings)
            for end in ends
        ]
    )
