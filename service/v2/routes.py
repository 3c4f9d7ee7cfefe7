"""The Open Inference Protocol (KServe V2 REST) beside the domain API, for generic tooling.

Each served model is two V2 models, `<name>-encoder` and `<name>-decoder`, whose tensors are the
graph's own (manifest names, FP32, batch axis -1), in one version, "1". Inference runs through
`ServedModel.run`, so the graph runners' batching and shedding apply as on the domain routes.
Errors under /v2 are the protocol's `{"error": "..."}` (see `ErrorBodies`).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.asgi.routing import ModelRoute
from service.core.errors import PROBLEM_JSON, UnknownModel, UnsupportedMediaType
from service.core.metrics import MODEL_SCOPE_KEY
from service.models.batching import Arrays
from service.models.served import GraphKind, ServedModel
from service.rest.codecs import check_finite, check_images
from service.rest.deps import app_state, loaded_registry
from service.rest.fragments import BINARY, binary_outputs
from service.rest.inputs import check_count
from service.rest.responses import json_response
from service.runtime.protocol import Drain
from service.v2.protocol import (
    HEADER_LENGTH,
    BadRequest,
    V2Error,
    V2InferenceResponse,
    V2ModelMetadata,
    V2ServerMetadata,
    read_request,
    write_response,
)

TAG = "open inference protocol (v2)"
VERSION = "1"
GRAPHS: tuple[GraphKind, ...] = ("encoder", "decoder")
PLATFORMS = {"onnx": "onnxruntime_onnx", "torchscript": "pytorch_torchscript"}
EXTENSIONS = ["binary_tensor_data"]
OCTETS = "application/octet-stream"

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


HEALTH = {"description": "200: true; 4xx: false. The body is empty.", "response_class": Response}


@router.get("", response_model=V2ServerMetadata, summary="Server metadata", responses=errors())
async def server_metadata(request: Request) -> Response:
    return json_response(
        {"name": "latentserve", "version": request.app.version, "extensions": EXTENSIONS}
    )


@router.get("/health/live", summary="Server live", responses=errors(protected=False), **HEALTH)
async def server_live() -> Response:
    return Response()


@router.get(
    "/health/ready",
    summary="Server ready: the models are loaded, and the process is not shutting down",
    responses=errors(400, protected=False),
    **HEALTH,
)
async def server_ready(request: Request) -> Response:
    registry = app_state(request).registry
    ready = registry is not None and bool(registry.models) and not Drain.active
    return Response(status_code=200 if ready else 400)


@router.get("/models/{model}/ready", summary="Model ready", responses=errors(404, 503), **HEALTH)
async def model_ready(request: Request, model: str = ModelPath) -> Response:
    _resolve(request, model, None)
    return Response()


@router.get(
    "/models/{model}/versions/{version}/ready",
    summary="Model version ready",
    responses=errors(404, 503),
    **HEALTH,
)
async def model_version_ready(
    request: Request, model: str = ModelPath, version: str = VersionPath
) -> Response:
    _resolve(request, model, version)
    return Response()


@router.get(
    "/models/{model}",
    response_model=V2ModelMetadata,
    summary="Model metadata",
    responses=errors(404, 503),
)
async def model_metadata(request: Request, model: str = ModelPath) -> Response:
    return _metadata(request, model, None)


@router.get(
    "/models/{model}/versions/{version}",
    response_model=V2ModelMetadata,
    summary="Model version metadata",
    responses=errors(404, 503),
)
async def model_version_metadata(
    request: Request, model: str = ModelPath, version: str = VersionPath
) -> Response:
    return _metadata(request, model, version)


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
                "application/json": {
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
    registry = loaded_registry(request)
    base, _, kind = name.rpartition("-")
    served = registry.models.get(base) if kind in GRAPHS else None
    if served is None:
        refused = next((f for f in registry.failed if f.name == base), None)
        if refused is not None and kind in GRAPHS:
            raise UnknownModel(f"model {base!r} was refused at start-up: {refused.reason}")
        raise UnknownModel(
            f"no model named {name!r}; each of {', '.join(sorted(registry.models))} is served "
            "as <name>-encoder and <name>-decoder"
        )
    if version not in (None, VERSION):
        raise UnknownModel(f"model {name!r} has one version, {VERSION}; got {version!r}")
    request.scope[MODEL_SCOPE_KEY] = name
    return served, kind  # type: ignore[return-value]


def _metadata(request: Request, name: str, version: str | None) -> Response:
    served, kind = _resolve(request, name, version)
    manifest = served.manifest
    signature = getattr(manifest, kind)

    def tensors(names: list[str]) -> list[dict]:
        return [
            {"name": n, "datatype": "FP32", "shape": [-1, *manifest.item_shape(n)]} for n in names
        ]

    backend = app_state(request).backend.name
    return json_response(
        {
            "name": name,
            "versions": [VERSION],
            "platform": PLATFORMS.get(backend, backend),
            "inputs": tensors(signature.inputs),
            "outputs": tensors(signature.outputs),
        }
    )


async def _infer(request: Request, name: str, version: str | None) -> Response:
    served, kind = _resolve(request, name, version)
    if request.headers.get("content-encoding", "identity") != "identity":
        raise UnsupportedMediaType("compressed request bodies are not supported; send it as is")
    message = read_request(await request.body(), request.headers.get(HEADER_LENGTH))
    signature = getattr(served.manifest, kind)
    plan = message.output_plan(signature.outputs)
    inputs = _graph_inputs(request, served, name, signature.inputs, message.inputs)
    outputs = await served.run(kind, inputs)
    return write_response(name, VERSION, message.id, outputs, plan)


def _graph_inputs(
    request: Request,
    served: ServedModel,
    name: str,
    expected: list[str],
    given: Arrays,
) -> Arrays:
    """The request's tensors checked against the graph: names, shapes, batch size, values."""
    if sorted(given) != sorted(expected):
        raise BadRequest(f"model {name!r} takes the inputs {expected}; got {list(given)}")
    manifest = served.manifest
    counts = set()
    for tensor in expected:
        array = given[tensor]
        shape = manifest.item_shape(tensor)
        if array.shape[1:] != shape or array.ndim != len(shape) + 1:
            raise BadRequest(
                f"input {tensor!r} of {name!r} must have the shape {[-1, *shape]}; "
                f"got {list(array.shape)}"
            )
        counts.add(array.shape[0])
    if len(counts) > 1:
        raise BadRequest(f"the inputs of {name!r} must have one batch size; got {sorted(counts)}")
    check_count(counts.pop(), app_state(request).settings, "batch items")
    checked: Arrays = {}
    for tensor, array in given.items():
        if tensor == "image":
            checked[tensor] = check_images(array, manifest.image)
        else:
            check_finite(array, f"{tensor} values")
            checked[tensor] = array
    return checked


class ErrorBodies:
    """Under /v2, error responses are the protocol's `{"error": "..."}` instead of problem+json,
    and the 422 the domain routes answer for bad input is the protocol's 400.

    A middleware, so that every error takes the protocol's form: the routes', the unknown paths',
    the body size limit's and those of any middleware inside this one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v2" or path.startswith("/v2/")):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def send_translated(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and _is_problem(message):
                held = message
                return
            if held is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_error(send, held, b"".join(chunks))

        await self.app(scope, receive, send_translated)


def _is_problem(start: Message) -> bool:
    return any(
        key == b"content-type" and value.startswith(PROBLEM_JSON.encode())
        for key, value in start["headers"]
    )


async def _send_error(send: Send, start: Message, problem: bytes) -> None:
    try:
        detail = orjson.loads(problem)["detail"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        detail = problem.decode(errors="replace")
    body = orjson.dumps({"error": detail})
    status = 400 if start["status"] == 422 else start["status"]
    headers = [
        (key, value)
        for key, value in start["headers"]
        if key not in (b"content-type", b"content-length")
    ]
    headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
