"""POST /decode: latent vectors (+ labels) to images."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.asgi.routing import ModelRoute
from service.core.media import JSON, NPY, PNG
from service.rest import examples
from service.rest.codecs import array_from_npy, latents_from_values
from service.rest.deps import LabelQuery, ModelName, OutputQuery, served_model, settings_of
from service.rest.fragments import binary_outputs, body, json_content, problems
from service.rest.inputs import media_type, read_json, unsupported
from service.rest.responses import images_response, negotiate
from service.rest.schemas import DecodeRequest, DecodeResponse

router = APIRouter(tags=["latents"], route_class=ModelRoute)


@router.post(
    "/decode",
    response_model=DecodeResponse,
    summary="Latent vectors to images",
    description=(
        "Decodes each latent vector. Conditional models take a label per latent: encode an image "
        "with its own label and decode the latent with another for an analogy. "
        "`Accept: image/png` answers one grid; `application/x-npy` the array [N, C, H, W]."
    ),
    openapi_extra=body(
        {
            **json_content("DecodeRequest", examples.DECODE),
            NPY: {"schema": {"type": "string", "format": "binary"}},
        },
        "JSON latents (and labels), or an .npy array [N, latent_dim] with labels in the query.",
    ),
    responses={
        200: {"content": binary_outputs(PNG, NPY)},
        **problems(404, 406, 413, 415, 422, 503),
    },
)
async def decode(
    request: Request,
    label: LabelQuery = None,
    output: OutputQuery = "png",
    model_name: ModelName = None,
) -> Response:
    media = negotiate(request, (JSON, PNG, NPY))
    model = served_model(request, model_name)
    settings = settings_of(request)
    kind = media_type(request)
    if kind == JSON:
        payload = await read_json(request, DecodeRequest)
        values, label = payload.latents, payload.labels if payload.labels is not None else label
    elif kind == NPY:
        values = array_from_npy(await request.body())
    else:
        raise unsupported(request, (JSON, NPY))
    latents = latents_from_values(values, model.manifest.latent_dim, settings.max_images)
    labels = model.check_labels(label, len(latents))
    images = await model.decode(latents, labels)
    return images_response(
        media, {"model": model.name}, images, model.manifest.image, encoding=output
    )
