"""What both HTTP front ends answer with: the data plane of the app a request reached, JSON
bodies (numpy arrays included), and the OpenAPI fragment of a binary body."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.core.media import JSON
from service.models.dataplane import DataPlane

BINARY = {"type": "string", "format": "binary"}


def plane(request: Request) -> DataPlane:
    """The data plane (service.models.dataplane) of the app that serves the request."""
    return request.app.state.latentserve


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type=JSON
    )


def binary_outputs(*media: str) -> dict[str, Any]:
    """The `content` of a response in each of the given binary media types."""
    return {media_type: {"schema": BINARY} for media_type in media}
