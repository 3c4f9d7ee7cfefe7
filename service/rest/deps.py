"""What the routes share: the data plane, settings, the model a request names, common parameters.

The routes that run models resolve these with plain calls rather than FastAPI dependencies:
solving dependencies costs more per request than the work they do (measured in
docs/service.md). The parameters stay declared, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from service.asgi.middleware import MODEL_SCOPE_KEY
from service.asgi.responses import plane
from service.core.settings import Settings
from service.models.registry import ModelRegistry
from service.models.served import ServedModel
from service.rest.responses import ImageEncoding
from service.rest.schemas import Label


def settings_of(request: Request) -> Settings:
    return plane(request).settings


async def ready_registry(request: Request) -> ModelRegistry:
    return plane(request).loaded()


def served_model(request: Request, name: str | None) -> ServedModel:
    """The model a request names (the default when it names none); 404 or 503 otherwise."""
    served = plane(request).model(name)
    request.scope[MODEL_SCOPE_KEY] = served.name
    return served


RegistryDep = Annotated[ModelRegistry, Depends(ready_registry)]
ModelName = Annotated[
    str | None,
    Query(
        alias="model",
        min_length=1,
        description="Model name (see /models); the configured default when left out.",
    ),
]
LabelQuery = Annotated[
    list[Label] | None,
    Query(description="Conditional models: the class per input (repeat it), or one for all."),
]
OutputQuery = Annotated[
    ImageEncoding,
    Query(description="JSON images as base64 PNG (`png`) or as nested lists [C][H][W] (`array`)."),
]
