"""GET /healthz (live), /readyz (models loaded), /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from service.rest.deps import plane
from service.rest.responses import json_response
from service.rest.schemas import Liveness, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process answers")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: models are loaded",
    description="200 once the models are loaded and at least one serves; 503 before, when none "
    "could be loaded, or once the process shuts down (SIGTERM). Refused folders are listed in "
    "`failed` either way.",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
async def readyz(request: Request) -> Response:
    readiness = plane(request).readiness()
    body = {
        "ready": readiness.ready,
        "models": readiness.models,
        "failed": [{"name": f.name, "reason": f.reason} for f in readiness.failed],
        "detail": readiness.detail,
    }
    return json_response(body, 200 if readiness.ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}
    },
)
async def metrics(request: Request) -> Response:
    body, media_type = plane(request).metrics.scrape()
    return Response(body, media_type=media_type)
