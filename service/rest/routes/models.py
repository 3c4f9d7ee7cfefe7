"""GET /models, /models/{name}, /models/{name}/reference: what is served, and how."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from service.core.errors import ApiError
from service.core.metrics import MODEL_SCOPE_KEY
from service.core.settings import Settings
from service.models.manifest import MixtureSampler
from service.models.served import ServedModel
from service.rest.deps import RegistryDep, app_state, settings_of
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
    backend = app_state(request).backend.describe()
    return json_response(
        {
            "default": registry.default,
            "models": [model_info(m, backend) for m in registry.models.values()],
            "failed": [{"name": f.name, "reason": f.reason} for f in registry.failed],
            "limits": limits(settings_of(request)),
        }
    )


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
    return json_response(model_info(model, app_state(request).backend.describe()))


@router.get(
    "/models/{name}/reference",
    summary="The model's reference set: a 2-D latent map of test images and class means",
    description="The ReferenceSet of service/models/manifest.py, as exported with the model.",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ReferenceSet"}}
            }
        },
        **problems(404, 503),
    },
)
async def get_reference(request: Request, registry: RegistryDep, name: str = NamePath) -> Response:
    model = _named(request, registry.get(name))
    if model.reference_json is None:
        raise ApiError(f"model {name!r} was exported without a reference set", status=404)
    return Response(model.reference_json, media_type="application/json")


def _named(request: Request, model: ServedModel) -> ServedModel:
    request.scope[MODEL_SCOPE_KEY] = model.name
    return model


def model_info(model: ServedModel, backend: dict[str, object]) -> dict[str, object]:
    m = model.manifest

    def tensors(names: list[str]) -> list[dict[str, object]]:
        return [{"name": name, "shape": ["N", *m.item_shape(name)]} for name in names]

    sampler = {"kind": m.sampler.kind}
    if isinstance(m.sampler, MixtureSampler):
        sampler["components"] = len(m.sampler.weights)
    return {
        "name": m.name,
        "description": m.description,
        "family": m.family,
        "architecture": m.architecture,
        "variational": m.variational,
        "conditional": m.conditional,
        "latent_dim": m.latent_dim,
        "image": {
            "channels": m.image.channels,
            "height": m.image.height,
            "width": m.image.width,
            "value_range": list(m.image.value_range),
        },
        "classes": m.classes,
        "backend": backend["backend"],
        "provider": model.device,
        "inputs": {"encoder": tensors(m.encoder.inputs), "decoder": tensors(m.decoder.inputs)},
        "outputs": {"encoder": tensors(m.encoder.outputs), "decoder": tensors(m.decoder.outputs)},
        "sampler": sampler,
        "dataset": m.dataset.model_dump(),
        "metrics": m.metrics,
        "parity": m.parity,
        "has_reference": model.reference_json is not None,
        "calibration": m.calibration.model_dump() if m.calibration else None,
        "created": m.created,
    }
