"""The Open Inference Protocol (KServe V2 REST) beside the domain API, for generic tooling.

Each served model is two V2 models, `<name>-encoder` and `<name>-decoder`, whose tensors are the
graph's own (manifest names, FP32, batch axis -1), in one version, "1". Inference runs through
`ServedModel.run`, so the graph runners' batching and shedding apply as on the domain routes.
Errors under /v2 are the protocol's `{"error": "..."}` (see `ErrorBodies`).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Path, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from service.asgi.middleware import MODEL_SCOPE_KEY
from service.asgi.responses import BINARY, binary_outputs, json_response
from service.asgi.responses import plane as app_state
from service.asgi.routing import ModelRoute
from service.core.drain import Drain
from service.core.errors import UnsupportedMediaType
from service.core.media import JSON, OCTETS
from service.models import oip
from service.models.served import GraphKind, ServedModel
from service.v2.protocol import (
    HEADER_LENGTH,
    BadRequest,
    V2Error,
    V2InferenceResponse,
    V2ModelConfig,
    V2ModelMetadata,
    V2ModelReady,
    V2RepositoryModel,
    V2ServerLive,
    V2ServerMetadata,
    V2ServerReady,
    V2Statistics,
    read_request,
    write_response,
)

TAG = "open inference protocol (v2)"
VERSION = oip.VERSION

router = APIRouter(prefix="/v2", tags=[TAG])

ModelPath = Path(
    description="`<model>-encoder` or `<model>-decoder`.", examples=["mnist-vae-encoder"]
)
VersionPath = Path(description="The one version, 1.", examples=["1"])


def errors(*statuses: int, protected: bool = True) -> dict[int | str, dict]:
    documented = {status: {"model": V2Error, "description": "Error"} for status in statuses}
    if protected:
        documented[401] = {
            "model": V2Error,
            "description": "No API key, or an unknown one (only where the server has API keys)",
        }
    # Declaring "4XX" also keeps FastAPI from documenting a 422 this protocol never answers.
    documented["4XX"] = {"model": V2Error, "description": "Other errors of the request"}
    return documented


@router.get("", response_model=V2ServerMetadata, summary="Server metadata", responses=errors())
async def server_metadata(request: Request) -> Response:
    return json_response(oip.server_metadata(request.app.version))


@router.get(
    "/health/live",
    response_model=V2ServerLive,
    summary="Server live",
    responses=errors(protected=False),
)
async def server_live() -> Response:
    return json_response({"live": True})


@router.get(
    "/health/ready",
    response_model=V2ServerReady,
    summary="Server ready: the models are loaded, and the process is not shutting down",
    description='200 with `{"ready": true}`; 400 with `{"ready": false}`.',
    responses={400: {"model": V2ServerReady, "description": "Not ready"}},
)
async def server_ready(request: Request) -> Response:
    ready = oip.server_ready(app_state(request), Drain.active)
    return json_response({"ready": ready}, 200 if ready else 400)


@router.get(
    "/models/{model}/ready",
    response_model=V2ModelReady,
    summary="Model ready",
    responses=errors(404, 503),
)
async def model_ready(request: Request, model: str = ModelPath) -> Response:
    _resolve(request, model, None)
    return json_response({"name": model, "ready": True})


@router.get(
    "/models/{model}/versions/{version}/ready",
    response_model=V2ModelReady,
    summary="Model version ready",
    responses=errors(404, 503),
)
async def model_version_ready(
    request: Request, model: str = ModelPath, version: str = VersionPath
) -> Response:
    _resolve(request, model, version)
    return json_response({"name": model, "ready": True})


STATS_DOC = (
    "Triton's statistics extension, from the graph runners' own measures (docs/service.md): "
    "`inference_count` batch items, `execution_count` graph calls; `compute_infer` counts "
    "a batch once."
)


# Before /models/{model}, which would take "stats" for a model's name.
@router.get(
    "/models/stats",
    response_model=V2Statistics,
    summary="Statistics of every model",
    description=STATS_DOC,
    responses=errors(503),
)
async def all_statistics(request: Request) -> Response:
    return json_response(oip.statistics(app_state(request), None, None))


@router.get(
    "/models/{model}/stats",
    response_model=V2Statistics,
    summary="Model statistics",
    description=STATS_DOC,
    responses=errors(404, 503),
)
async def model_statistics(request: Request, model: str = ModelPath) -> Response:
    return _answer(request, model, oip.statistics, model, None)


@router.get(
    "/models/{model}/versions/{version}/stats",
    response_model=V2Statistics,
    summary="Model version statistics",
    description=STATS_DOC,
    responses=errors(404, 503),
)
async def model_version_statistics(
    request: Request, model: str = ModelPath, version: str = VersionPath
) -> Response:
    return _answer(request, model, oip.statistics, model, version)


CONFIG_DOC = (
    "Triton's model configuration (model_config.proto as JSON), as perf_analyzer reads it: "
    "`max_batch_size` is the most batch items one request may carry, `dims` leave out the "
    "batch axis, `dynamic_batching` states the graph runner's settings."
)


@router.get(
    "/models/{model}/config",
    response_model=V2ModelConfig,
    summary="Model configuration",
    description=CONFIG_DOC,
    responses=errors(404, 503),
)
async def model_config(request: Request, model: str = ModelPath) -> Response:
    return _answer(request, model, oip.model_config, model, None)


@router.get(
    "/models/{model}/versions/{version}/config",
    response_model=V2ModelConfig,
    summary="Model version configuration",
    description=CONFIG_DOC,
    responses=errors(404, 503),
)
async def model_version_config(
    request: Request, model: str = ModelPath, version: str = VersionPath
) -> Response:
    return _answer(request, model, oip.model_config, model, version)


@router.get(
    "/models/{model}",
    response_model=V2ModelMetadata,
    summary="Model metadata",
    responses=errors(404, 503),
)
async def model_metadata(request: Request, model: str = ModelPath) -> Response:
    return _answer(request, model, oip.model_metadata, model, None)


@router.get(
    "/models/{model}/versions/{version}",
    response_model=V2ModelMetadata,
    summary="Model version metadata",
    responses=errors(404, 503),
)
async def model_version_metadata(
    request: Request, model: str = ModelPath, version: str = VersionPath
) -> Response:
    return _answer(request, model, oip.model_metadata, model, version)


@router.post(
    "/repository/index",
    response_model=list[V2RepositoryModel],
    summary="Repository index: every model and its state",
    description=(
        "The model repository extension's index: each `<model>-encoder` and `<model>-decoder` "
        "READY, those of refused folders UNAVAILABLE with the reason. The body is optional; "
        '`{"ready": true}` lists only the ready ones.'
    ),
    responses=errors(400, 503),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                JSON: {"schema": {"$ref": "#/components/schemas/V2RepositoryIndexRequest"}}
            },
        }
    },
)
async def repository_index(request: Request) -> Response:
    body = await request.body()
    ready = False
    if body.strip():
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the index request is not valid JSON: {exc}") from exc
        if not isinstance(message, dict):
            raise BadRequest("the index request must be a JSON object")
        ready = message.get("ready")
        if ready is not None and not isinstance(ready, bool):
            raise BadRequest("`ready` must be true or false")
        ready = bool(ready)
        if not isinstance(message.get("repository_name", ""), str | None):
            raise BadRequest("`repository_name` must be a string")
    return json_response(oip.repository_index(app_state(request), ready))


REFUSAL = {
    "description": (
        "Refused, always: the models are the model directory's folders; change them and send "
        "SIGHUP to reload (docs/service.md). 403 with the protocol's error."
    ),
    "responses": {403: {"model": V2Error, "description": "Not supported here"}, **errors()},
}


@router.post("/repository/models/{model}/load", summary="Load a model (refused)", **REFUSAL)
async def repository_load(model: str = ModelPath) -> Response:
    oip.refuse_repository_control()


@router.post("/repository/models/{model}/unload", summary="Unload a model (refused)", **REFUSAL)
async def repository_unload(model: str = ModelPath) -> Response:
    oip.refuse_repository_control()


def path_parameter(name: str, description: str, example: str) -> dict:
    schema = {"type": "string", "title": name.title()}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
        "example": example,
    }


MODEL_PARAMETER = path_parameter("model", ModelPath.description, "mnist-vae-2d-decoder")
VERSION_PARAMETER = path_parameter("version", VersionPath.description, "1")

# The infer routes read their path themselves (ModelRoute, service/asgi/routing.py, validates
# only the query), like the domain routes that run models; their parameters are documented by hand.
infer_router = APIRouter(prefix="/v2", tags=[TAG], route_class=ModelRoute)

INFER_DOC: dict = {
    "response_model": V2InferenceResponse,
    "description": (
        "Tensors as JSON `data`, or as binary data after the JSON header "
        f"(`{HEADER_LENGTH}`, `binary_data_size`); outputs as binary data with `binary_data` "
        "or `binary_data_output`."
    ),
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {"$ref": "#/components/schemas/V2InferenceRequest"},
                    "examples": {
                        "decode": {
                            "summary": "model=mnist-vae-2d-decoder: one latent to one image",
                            "value": {
                                "id": "42",
                                "inputs": [
                                    {
                                        "name": "latent",
                                        "shape": [1, 2],
                                        "datatype": "FP32",
                                        "data": [0.0, 0.0],
                                    }
                                ],
                            },
                        }
                    },
                },
                OCTETS: {"schema": BINARY},
            },
        },
    },
    "responses": {
        200: {"content": binary_outputs(OCTETS)},
        **errors(400, 404, 413, 503),
    },
}


def infer_doc(*parameters: dict) -> dict:
    extra = {**INFER_DOC["openapi_extra"], "parameters": list(parameters)}
    return {**INFER_DOC, "openapi_extra": extra}


@infer_router.post("/models/{model}/infer", summary="Inference", **infer_doc(MODEL_PARAMETER))
async def infer(request: Request) -> Response:
    return await _infer(request, request.path_params["model"], None)


@infer_router.post(
    "/models/{model}/versions/{version}/infer",
    summary="Inference on a version",
    **infer_doc(MODEL_PARAMETER, VERSION_PARAMETER),
)
async def infer_version(request: Request) -> Response:
    path = request.path_params
    return await _infer(request, path["model"], path["version"])


def _resolve(request: Request, name: str, version: str | None) -> tuple[ServedModel, GraphKind]:
    served, kind = oip.resolve(app_state(request), name, version)
    request.scope[MODEL_SCOPE_KEY] = name
    return served, kind


def _answer(request: Request, name: str, call, *args) -> Response:
    """A data-plane answer about one protocol model, recorded under its name in the metrics."""
    body = call(app_state(request), *args)
    request.scope[MODEL_SCOPE_KEY] = name
    return json_response(body)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    state = app_state(request)
    served, kind = oip.resolve(state, name, version)
    request.scope[MODEL_SCOPE_KEY] = name
    if request.headers.get("content-encoding", "identity") != "identity":
        raise UnsupportedMediaType("compressed request bodies are not supported; send it as is")
    message = read_request(await request.body(), request.headers.get(HEADER_LENGTH))
    signature = getattr(served.manifest, kind)
    plan = message.output_plan(signature.outputs)
    inputs = oip.graph_inputs(state, served, kind, name, message.inputs)
    outputs = await served.run(kind, inputs)
    return write_response(name, VERSION, message.id, outputs, plan)


# Last under /v2 (before the web page's catch-all): whatever no route above takes.
fallback_router = APIRouter(prefix="/v2", include_in_schema=False)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@fallback_router.api_route("/{path:path}", methods=METHODS)
async def unknown(request: Request) -> Response:
    """404 for an unknown /v2 path whatever the method; 405 where a /v2 route has the path."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if getattr(route, "endpoint", None) is unknown:
            continue
        path = getattr(route, "path", "")
        if path.startswith("/v2") and route.matches(request.scope)[0] is Match.PARTIAL:
            allowed |= set(getattr(route, "methods", None) or ())
    if allowed:
        raise HTTPException(405, headers={"Allow": ", ".join(sorted(allowed))})
    raise HTTPException(
        404,
        f"no such route under /v2: {request.method} {request.url.path}; see /docs for the "
        "protocol's routes",
    )
