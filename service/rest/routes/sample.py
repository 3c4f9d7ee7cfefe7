"""GET /sample: images generated from the prior (or the fitted mixture), seeded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.asgi.routing import ModelRoute
from service.core.errors import BadInput
from service.core.media import JSON, NPY, PNG
from service.models.latents import new_seed, sample
from service.models.served import ServedModel
from service.rest.deps import ModelName, OutputQuery, served_model, settings_of
from service.rest.fragments import binary_outputs, problems
from service.rest.responses import images_response, negotiate
from service.rest.schemas import SEED_MAX, SampleResponse

router = APIRouter(tags=["latents"], route_class=ModelRoute)


@router.get(
    "/sample",
    response_model=SampleResponse,
    summary="Generate images",
    description=(
        "Draws `n` latents (variational models: from N(0, I); deterministic ones: from the "
        "Gaussian mixture fitted on their training latents) scaled by `temperature`, and decodes "
        "them. The same `seed` gives the same images; without one a seed is drawn and answered. "
        "Conditional models draw every image as `label`, or cycle through the classes without one. "
        "`Accept: image/png` answers one grid."
    ),
    responses={200: {"content": binary_outputs(PNG, NPY)}, **problems(404, 406, 422, 503)},
)
async def sample_images(
    request: Request,
    n: Annotated[int, Query(ge=1, description="Number of images.", examples=[16])] = 16,
    seed: Annotated[
        int | None, Query(ge=0, le=SEED_MAX, description="Seed; drawn when left out.")
    ] = None,
    temperature: Annotated[float, Query(gt=0, le=10, description="Scale of the noise.")] = 1.0,
    label: Annotated[
        int | None, Query(ge=0, description="Conditional models: the class to draw.")
    ] = None,
    output: OutputQuery = "png",
    model_name: ModelName = None,
) -> Response:
    media = negotiate(request, (JSON, PNG, NPY))
    model = served_model(request, model_name)
    settings = settings_of(request)
    if n > settings.max_samples:
        raise BadInput(f"n={n} is over the limit of {settings.max_samples} images")
    seed = new_seed() if seed is None else seed
    labels = _labels(model, label, n)
    manifest = model.manifest
    latents = sample(manifest.sampler, manifest.latent_dim, n, seed=seed, temperature=temperature)
    images = await model.decode(latents, labels)
    payload = {
        "model": model.name,
        "seed": seed,
        "temperature": temperature,
        "latents": latents,
        "labels": labels,
    }
    return images_response(media, payload, images, manifest.image, encoding=output)


def _labels(model: ServedModel, label: int | None, n: int):
    if label is None and model.manifest.conditional:
        return model.check_labels([i % model.manifest.num_classes for i in range(n)], n)
    return model.check_labels(None if label is None else [label], n)
