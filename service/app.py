"""The application factory: `create_app(settings)`; models load in the background at start-up."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.asgi.access import RequestContext
from service.asgi.middleware import ApiKeyAuth, BodySizeLimit, MetricsMiddleware
from service.asgi.problems import install_error_handlers
from service.core.auth import configured_keys, open_paths
from service.core.metrics import Metrics
from service.core.settings import Settings, get_settings
from service.core.tracing import Tracing
from service.models.backends import create_backend
from service.models.dataplane import DataPlane
from service.models.reload import Reloader
from service.openapi import build_openapi, render
from service.rest.routes import (
    decode,
    docs,
    encode,
    health,
    interpolate,
    models,
    sample,
    score,
    web,
)
from service.v2 import routes as v2
from service.v2.errors import ErrorBodies

log = logging.getLogger("latentserve")

DESCRIPTION = (
    "Encoders and decoders of exported autoencoders over REST. Every route takes `model` "
    "(see /models). Errors are `application/problem+json`."
)


def package_version() -> str:
    try:
        return version("latentserve")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: Settings | None = None, *, tracer_provider=None) -> FastAPI:
    """The app; `tracer_provider` (OpenTelemetry's) traces it as LATENTSERVE_OTLP_ENDPOINT
    would, into whatever exporter the provider has."""
    settings = settings or get_settings()
    state = DataPlane(settings, Metrics())
    tracer = Tracing.configure(settings.otlp_endpoint, tracer_provider)
    app = FastAPI(
        title="latentserve",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=partial(lifespan, state=state, tracer=tracer),
        docs_url=None,  # service/rest/routes/docs.py serves /docs and /redoc, CDN-free
        redoc_url=None,
    )
    app.state.latentserve = state
    state.metrics.watch_queues(state.queue_depths)
    install_error_handlers(app)
    served = [m.router for m in (encode, decode, sample, interpolate, score)] + [v2.infer_router]
    described = [models.router, health.router, v2.router]
    # Matched in this order: the routes that run models first, as every request tries the routes
    # one by one (10-30 us a request on the last ones, measured in-process); the document keeps
    # its reading order.
    add_routes(app, *served, *described)
    app.state.documented_routes = [
        route for router in (*served[:-1], *described, served[-1]) for route in router.routes
    ]
    add_routes(app, docs.router)  # Swagger UI and ReDoc, their files served here (no CDN)
    add_routes(app, v2.fallback_router)  # unknown /v2 paths, before the page's catch-all
    if web.STATIC_DIR.is_dir():
        add_routes(app, web.router)  # last: its catch-all path must not shadow the API
    # Added innermost first: metrics see every response, CORS headers reach the 413s too.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    keys = configured_keys(settings)
    app.state.public_paths = public_paths(app, settings)  # also read by the OpenAPI document
    app.state.keys_required = bool(keys)
    if keys:  # not installed otherwise: an open API pays nothing for it
        app.add_middleware(ApiKeyAuth, keys=keys, open_paths=app.state.public_paths)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(ErrorBodies)  # outside the others: /v2 errors in the protocol's form
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    # Outermost: every response gets its request ID, the access log sees every request.
    app.add_middleware(RequestContext, log_format=settings.log_format, tracer=tracer)
    app.openapi = partial(build_openapi, app)  # type: ignore[method-assign]
    return app


def openapi_document() -> str:
    """openapi/openapi.json as the code and the default settings make it."""
    return render(create_app(Settings()))


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """The routers' own route objects, in order, on the app's router: one route per (path,
    method), documented and served by the same object. (`include_router` of FastAPI 0.165 puts
    each router behind an inclusion layer that every request is matched through, some 25 us a
    request on the model routes, measured in-process.)"""
    for router in routers:
        app.router.routes.extend(router.routes)


def public_paths(app: FastAPI, settings: Settings) -> set[str]:
    """What stays open when keys are required: probes, the API docs and the web page's files."""
    files = web.page_files() if web.STATIC_DIR.is_dir() else []
    return open_paths(settings, files, [app.openapi_url, *docs.paths()])


@asynccontextmanager
async def lifespan(
    app: FastAPI, state: DataPlane, tracer: Tracing | None = None
) -> AsyncIterator[None]:
    # A backend that cannot run (require_cuda without CUDA) stops the start-up here.
    state.backend = create_backend(state.settings)
    grpc_server = None
    if state.settings.grpc_port:  # the same process, loop, data plane and runners as HTTP
        from service.grpc.server import GrpcServer

        grpc_server = GrpcServer(state, app.version, configured_keys(state.settings))
        await grpc_server.start()
    loading = asyncio.create_task(load_models(state))
    if state.settings.workers > 1:  # a worker takes connections from the shared socket only
        await asyncio.shield(loading)  # once it can serve them
    reloader = Reloader(state)
    reloader.install()
    yield
    reloader.uninstall()
    if grpc_server is not None:
        await grpc_server.stop()
    await asyncio.shield(loading) if not loading.done() else None
    if state.registry is not None:
        await asyncio.gather(*(model.close() for model in state.registry.models.values()))
    if tracer is not None:
        tracer.close()  # the spans still buffered go out


async def load_models(state: DataPlane) -> None:
    try:
        state.registry = await asyncio.to_thread(state.read_models)
    except Exception as exc:
        log.exception("loading the models failed")
        state.load_error = f"loading the models failed: {exc}"
        return
    # Everything loaded so far lives as long as the process: keep the cyclic garbage collector
    # from walking it again and again, which showed as the slowest requests under load.
    gc.freeze()
    log.info(
        "ready: %d model(s), %d refused", len(state.registry.models), len(state.registry.failed)
    )
