"""POST /encode and POST /reconstruct: images in, latents (and reconstructions) out."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.asgi.routing import ModelRoute
from service.core.errors import BadInput
from service.core.media import JSON, NPY, PNG
from service.models.latents import new_seed, sample_posterior
from service.models.served import ServedModel
from service.rest import examples
from service.rest.deps import LabelQuery, ModelName, OutputQuery, served_model, settings_of
from service.rest.fragments import binary_outputs, image_body, problems
from service.rest.inputs import read_images
from service.rest.responses import (
    images_response,
    json_response,
    negotiate,
    npy_response,
)
from service.rest.schemas import (
    SEED_MAX,
    EncodeRequest,
    EncodeResponse,
    ImagesRequest,
    ReconstructResponse,
)

router = APIRouter(tags=["images"], route_class=ModelRoute)

INPUT_ERRORS = problems(404, 406, 413, 415, 422, 503)


@router.post(
    "/encode",
    response_model=EncodeResponse,
    summary="Images to latent vectors",
    description=(
        "Encodes each image. Variational models answer their posterior `mean` and `logvar`; "
        "`latents` is the mean, or a z sampled from the posterior with `sample` (seeded). "
        "`Accept: application/x-npy` answers `latents` as a float32 array [N, D]."
    ),
    openapi_extra=image_body("EncodeRequest", examples.ENCODE),
    responses={200: {"content": binary_outputs(NPY)}, **INPUT_ERRORS},
)
async def encode(
    request: Request,
    label: LabelQuery = None,
    sample: Annotated[bool, Query(description="Sample z from the posterior.")] = False,
    seed: Annotated[
        int | None, Query(ge=0, le=SEED_MAX, description="Seed of the posterior sample.")
    ] = None,
    model_name: ModelName = None,
) -> Response:
    media = negotiate(request, (JSON, NPY))
    model = served_model(request, model_name)
    settings = settings_of(request)
    images, body = await read_images(request, model.manifest.image, settings, EncodeRequest)
    if body is not None:
        label = body.labels if body.labels is not None else label
        sample = body.sample if body.sample is not None else sample
        seed = body.seed if body.seed is not None else seed
    labels = model.check_labels(label, len(images))
    encoding = await model.encode(images, labels)
    latents, seed = _latents(model, encoding.mean, encoding.logvar, sample, seed)
    if media == NPY:
        return npy_response(latents)
    return json_response(
        {
            "model": model.name,
            "latent_dim": model.manifest.latent_dim,
            "latents": latents,
            "mean": encoding.mean if encoding.logvar is not None else None,
            "logvar": encoding.logvar,
            "seed": seed,
        }
    )


def _latents(
    model: ServedModel, mean: np.ndarray, logvar: np.ndarray | None, sample: bool, seed: int | None
) -> tuple[np.ndarray, int | None]:
    if not sample:
        return mean, None
    if logvar is None:
        raise BadInput(f"model {model.name} is deterministic; `sample` needs a variational model")
    seed = new_seed() if seed is None else seed
    return sample_posterior(mean, logvar, seed), seed


@router.post(
    "/reconstruct",
    response_model=ReconstructResponse,
    summary="Images through the encoder and the decoder",
    description=(
        "decode(encode(x)) from the encoder's mean, with the mean squared error per image; for "
        "the denoising model this is the denoised image. `Accept: image/png` answers one grid; "
        "`application/x-npy` the array [N, C, H, W]."
    ),
    openapi_extra=image_body("ImagesRequest", examples.RECONSTRUCT),
    responses={200: {"content": binary_outputs(PNG, NPY)}, **INPUT_ERRORS},
)
async def reconstruct(
    request: Request,
    label: LabelQuery = None,
    output: OutputQuery = "png",
    model_name: ModelName = None,
) -> Response:
    media = negotiate(request, (JSON, PNG, NPY))
    model = served_model(request, model_name)
    settings = settings_of(request)
    images, body = await read_images(request, model.manifest.image, settings, ImagesRequest)
    if body is not None and body.labels is not None:
        label = body.labels
    labels = model.check_labels(label, len(images))
    latents = (await model.encode(images, labels)).mean
    recon = await model.decode(latents, labels)
    mse = ((recon - images) ** 2).reshape(len(images), -1).mean(axis=1)
    payload = {"model": model.name, "latents": latents, "mse": mse}
    return images_response(media, payload, recon, model.manifest.image, encoding=output)
