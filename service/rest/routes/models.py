"""GET /models, /models/{name}, /models/{name}/reference: what is served, and how."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from service.asgi.middleware import MODEL_SCOPE_KEY
from service.core.errors import NotFound
from service.core.media import JSON
from service.core.settings import Settings
from service.models.served import ServedModel
from service.rest.deps import RegistryDep, plane, settings_of
from service.rest.fragments import problems
from service.rest.responses import json_response
from service.rest.schemas import Limits, ModelInfo, ModelList

router = APIRouter(tags=["models"])

NamePath = Path(description="A model name from /models.", examples=["mnist-vae"])


@router.get(
    "/models",
    response_model=ModelList,
    summary="Every model served, and those refused",
    responses=problems(503),
)
async def list_models(request: Request, registry: RegistryDep) -> Response:
    catalogue = plane(request).catalogue()
    return json_response({**catalogue, "limits": limits(settings_of(request))})


def limits(settings: Settings) -> dict[str, int]:
    return {name: getattr(settings, name) for name in Limits.model_fields}


@router.get(
    "/models/{name}",
    response_model=ModelInfo,
    summary="One model's metadata",
    responses=problems(404, 503),
)
async def get_model(request: Request, registry: RegistryDep, name: str = NamePath) -> Response:
    model = _named(request, registry.get(name))
    return json_response(plane(request).model_info(model))


@router.get(
    "/models/{name}/reference",
    summary="The model's reference set: a 2-D latent map of test images and class means",
    description="The ReferenceSet of service/models/manifest.py, as exported with the model.",
    responses={
        200: {"content": {JSON: {"schema": {"$ref": "#/components/schemas/ReferenceSet"}}}},
        **problems(404, 503),
    },
)
async def get_reference(request: Request, registry: RegistryDep, name: str = NamePath) -> Response:
    model = _named(request, registry.get(name))
    if model.reference_json is None:
        raise NotFound(f"model {name!r} was exported without a reference set")
    return Response(model.reference_json, media_type=JSON)


def _named(request: Request, model: ServedModel) -> ServedModel:
    request.scope[MODEL_SCOPE_KEY] = model.name
    return model
