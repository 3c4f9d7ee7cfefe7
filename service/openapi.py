"""The OpenAPI document of the whole app (the domain routes and /v2): built from the routes and
the settings, written to openapi/openapi.json by one command.

python -m service openapi          # write the file
python -m service openapi --check  # exit 1 when the file differs from the code
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from service.asgi.problems import Problem
from service.core.media import PROBLEM_JSON
from service.core.settings import Settings
from service.models.manifest import Manifest, ReferenceSet
from service.models.oip import VERSION as V2_VERSION
from service.rest.schemas import (
    DecodeRequest,
    EncodeRequest,
    ImagesRequest,
    InterpolateRequest,
    ScoreRequest,
)
from service.v2.protocol import V2InferenceRequest, V2RepositoryIndexRequest

OPENAPI_FILE = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
V2_PREFIX = "/v2"
BEARER = "bearerAuth"
API_KEY_HEADER = "apiKeyHeader"
SECURITY_SCHEMES = {
    BEARER: {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`"},
    API_KEY_HEADER: {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}

# Request bodies the routes read themselves (they accept several media types), and the
# reference set; FastAPI cannot see them, so they are added to the components here.
EXTRA_SCHEMAS = (
    EncodeRequest,
    ImagesRequest,
    DecodeRequest,
    InterpolateRequest,
    ScoreRequest,
    ReferenceSet,
    V2InferenceRequest,
    V2RepositoryIndexRequest,
    Problem,
)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document of the app as configured; once models are loaded, also naming them."""
    static = app.openapi_schema or _static_openapi(app)
    registry = app.state.latentserve.registry
    if registry is None or not registry.models:
        return static
    served = [model.manifest for model in registry.models.values()]
    key = tuple((m.name, m.latent_dim, m.num_classes) for m in served)
    cached = getattr(app.state, "served_openapi", None)
    if cached is None or cached[0] != key:
        cached = (key, with_models(static, served))
        app.state.served_openapi = cached
    return cached[1]


def _static_openapi(app: FastAPI) -> dict[str, Any]:
    """What the code and the settings say, with no model loaded: openapi/openapi.json."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=getattr(app.state, "documented_routes", app.routes),
    )
    _, extra = models_json_schema(
        [(model, "validation") for model in EXTRA_SCHEMAS],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(extra["$defs"])
    _errors_as_problems(schema)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    _query_values_never_null(schema)
    _v2_versions(schema)
    _settings_limits(schema, app.state.latentserve.settings)
    document_security(schema, app.state.public_paths, keys_required=app.state.keys_required)
    _problem_headers(schema)
    _encode_links_to_decode(schema)
    app.openapi_schema = schema
    return schema


def with_models(static: dict[str, Any], served: list[Manifest]) -> dict[str, Any]:
    """The document with the loaded models enumerated, and the bounds they set."""
    schema = copy.deepcopy(static)
    names = sorted(m.name for m in served)
    dims = [m.latent_dim for m in served]
    classes = max((m.num_classes for m in served if m.conditional), default=0)
    graphs = [f"{name}-{graph}" for name in names for graph in ("encoder", "decoder")]
    for path, _, parameter in _parameters(schema):
        if _is_v2(path) and parameter["name"] == "model":
            parameter["schema"] = {"type": "string", "enum": graphs}
        elif parameter["name"] in ("model", "name"):
            parameter["schema"] = {"type": "string", "enum": names}
        elif parameter["name"] == "label" and classes:
            _items(parameter["schema"])["maximum"] = classes - 1
    components = schema["components"]["schemas"]
    for vector in (
        components["DecodeRequest"]["properties"]["latents"]["items"],
        _non_null(components["Endpoint"]["properties"]["latent"]),
    ):
        vector.update(minItems=min(dims), maxItems=max(dims))
    return schema


def _is_v2(path: str) -> bool:
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def _parameters(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                yield path, method, parameter


def _items(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of one value: the items' of an array parameter (`label` repeated)."""
    return schema["items"] if schema.get("type") == "array" else schema


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """X of `anyOf: [X, null]` (pydantic's `X | None`), or the schema itself."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    return options[0] if len(options) == 1 else schema


def _query_values_never_null(schema: dict[str, Any]) -> None:
    """A query string cannot say null: an optional parameter is left out, not sent as null."""
    for _, _, parameter in _parameters(schema):
        value = parameter["schema"]
        if "anyOf" in value:
            described = {k: v for k, v in value.items() if k != "anyOf"}
            parameter["schema"] = {**_non_null(value), **described}


def _encode_links_to_decode(schema: dict[str, Any]) -> None:
    """The latents /encode answers decode with the same model (a stateful fuzzer follows it)."""
    decode = schema["paths"]["/decode"]["post"]["operationId"]
    schema["paths"]["/encode"]["post"]["responses"]["200"]["links"] = {
        "DecodeTheLatents": {
            "operationId": decode,
            "description": "Decode the latents with the model that encoded them.",
            "parameters": {"model": "$response.body#/model"},
            "requestBody": {"latents": "$response.body#/latents"},
        }
    }


def _v2_versions(schema: dict[str, Any]) -> None:
    """Every V2 model has the one version."""
    for path, _, parameter in _parameters(schema):
        if _is_v2(path) and parameter["name"] == "version":
            parameter["schema"] = {**parameter["schema"], "enum": [V2_VERSION]}


def _settings_limits(schema: dict[str, Any], settings: Settings) -> None:
    """Limits that are settings, checked by the routes (422), stated where they apply."""
    limits = {"n": settings.max_samples, "steps": settings.max_steps}
    for _, _, parameter in _parameters(schema):
        if parameter["name"] in limits:
            parameter["schema"]["maximum"] = limits[parameter["name"]]
        elif parameter["name"] == "label" and parameter["schema"].get("type") == "array":
            parameter["schema"]["maxItems"] = settings.max_images
    components = schema["components"]["schemas"]
    for name, field in (("ImagesRequest", "images"), ("EncodeRequest", "images"),
                        ("ScoreRequest", "images"), ("DecodeRequest", "latents")):  # fmt: skip
        components[name]["properties"][field]["maxItems"] = settings.max_images
    for name in ("ImagesRequest", "EncodeRequest", "DecodeRequest"):
        _non_null(components[name]["properties"]["labels"])["maxItems"] = settings.max_images
    steps = components["InterpolateRequest"]["properties"]["steps"]
    _non_null(steps)["maximum"] = settings.max_steps


def _problem_headers(schema: dict[str, Any]) -> None:
    """Headers some problems carry: when to retry (most 503s), how to authenticate (401)."""
    headers = {
        "503": {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer", "minimum": 0}}},
        "401": {"WWW-Authenticate": {"description": "`Bearer realm=\"latentserve\"`",
                                     "schema": {"type": "string"}}},
    }  # fmt: skip
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for status, header in headers.items():
                if status in operation["responses"] and path != "/readyz":
                    operation["responses"][status].setdefault("headers", {}).update(header)


def _errors_as_problems(schema: dict[str, Any]) -> None:
    """Every 4xx/5xx is problem+json, and only that (FastAPI would add application/json and
    document its 422s as HTTPValidationError); /readyz answers its 503 as a Readiness, and the
    Open Inference Protocol under /v2 its errors as `{"error": ...}` JSON."""
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema["paths"].items():
        if path == "/readyz" or _is_v2(path):
            continue
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = problem
                    response["description"] = "Problem details"


def document_security(
    schema: dict[str, Any], open_paths: Iterable[str], keys_required: bool
) -> None:
    """Adds the two key schemes and applies them to every protected operation.

    Without configured keys the requirement lists `{}` too: a key is accepted but not needed.
    """
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    requirement: list[dict[str, list]] = [{BEARER: []}, {API_KEY_HEADER: []}]
    if not keys_required:
        requirement.append({})
    unauthorized = {
        "description": "No API key, or an unknown one (only where the server has API keys)",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    skip = frozenset(open_paths)
    for path, operations in schema["paths"].items():
        if path in skip:
            continue
        for operation in operations.values():
            operation["security"] = requirement
            operation.setdefault("responses", {}).setdefault("401", unauthorized)


def render(app: FastAPI) -> str:
    """The app's document as openapi/openapi.json holds it."""
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


def write_or_check(document: str, check: bool) -> int:
    """Writes the document to openapi/openapi.json; with `check`, 1 when the file differs."""
    if check:
        current = OPENAPI_FILE.read_text() if OPENAPI_FILE.exists() else ""
        if current != document:
            print(f"{OPENAPI_FILE} is stale: run python -m service openapi", file=sys.stderr)
            return 1
        return 0
    OPENAPI_FILE.parent.mkdir(parents=True, exist_ok=True)
    OPENAPI_FILE.write_text(document)
    print(f"wrote {OPENAPI_FILE}")
    return 0
