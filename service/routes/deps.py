"""Dependencies shared by the routes: app state, settings, the model a request names.

The dependencies are `async def` although they never await: FastAPI runs a plain `def`
dependency in its thread pool, a hop per dependency per request that costs more than the
dependency itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from service.core.errors import NotReady
from service.core.metrics import MODEL_SCOPE_KEY
from service.core.settings import Settings
from service.inference import ServedModel
from service.registry import ModelRegistry
from service.responses import ImageEncoding
from service.state import AppState


def app_state(request: Request) -> AppState:
    return request.app.state.latentserve


async def settings(request: Request) -> Settings:
    return app_state(request).settings


async def ready_registry(request: Request) -> ModelRegistry:
    return loaded_registry(request)


def loaded_registry(request: Request) -> ModelRegistry:
    state = app_state(request)
    if state.registry is None:
        raise NotReady(
            state.load_error or "models are still loading; retry shortly",
            headers={"Retry-After": "1"},
        )
    return state.registry


async def served_model(
    request: Request,
    model: Annotated[
        str | None,
        Query(description="Model name (see /models); the configured default when left out."),
    ] = None,
) -> ServedModel:
    served = loaded_registry(request).get(model)
    request.scope[MODEL_SCOPE_KEY] = served.name
    return served


SettingsDep = Annotated[Settings, Depends(settings)]
ModelDep = Annotated[ServedModel, Depends(served_model)]
RegistryDep = Annotated[ModelRegistry, Depends(ready_registry)]
LabelQuery = Annotated[
    list[int] | None,
    Query(description="Conditional models: the class per input (repeat it), or one for all."),
]
OutputQuery = Annotated[
    ImageEncoding,
    Query(description="JSON images as base64 PNG (`png`) or as nested lists [C][H][W] (`array`)."),
]
