"""GET /healthz (live), /readyz (models loaded), /metrics (Prometheus)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from starlette.responses import Response

from service.rest.deps import app_state
from service.rest.responses import json_response
from service.rest.schemas import Liveness, Readiness
from service.runtime.protocol import Drain
from service.runtime.workers import METRICS_DIR_ENV

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
    state = app_state(request)
    registry = state.registry
    if registry is None:
        detail = state.load_error or "models are loading"
        return json_response({"ready": False, "models": [], "failed": [], "detail": detail}, 503)
    failed = [{"name": f.name, "reason": f.reason} for f in registry.failed]
    ready = bool(registry.models) and not Drain.active
    if Drain.active:
        detail = "shutting down: requests already accepted are answered, send new ones elsewhere"
    else:
        detail = None if ready else "no model could be loaded; see `failed`"
    body = {"ready": ready, "models": sorted(registry.models), "failed": failed, "detail": detail}
    return json_response(body, 200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}
    },
)
async def metrics(request: Request) -> Response:
    registry = app_state(request).metrics.registry
    if METRICS_DIR_ENV in os.environ:  # several workers: the sums over all of them
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
