"""The OpenAPI document: built from the app, written to openapi/openapi.json by one command.

python -m service.openapi          # write the file
python -m service.openapi --check  # exit 1 when the file differs from the code
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from service.core.auth import document_security
from service.core.errors import PROBLEM_JSON
from service.inference_protocol import V2InferenceRequest
from service.manifest import ReferenceSet
from service.schemas import DecodeRequest, EncodeRequest, ImagesRequest, InterpolateRequest

OPENAPI_FILE = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"

# Request bodies the routes read themselves (they accept several media types), and the
# reference set; FastAPI cannot see them, so they are added to the components here.
EXTRA_SCHEMAS = (
    EncodeRequest,
    ImagesRequest,
    DecodeRequest,
    InterpolateRequest,
    ReferenceSet,
    V2InferenceRequest,
)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    _, extra = models_json_schema(
        [(model, "validation") for model in EXTRA_SCHEMAS],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(extra["$defs"])
    _validation_errors_as_problems(schema)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    document_security(schema, app.state.public_paths, keys_required=app.state.keys_required)
    app.openapi_schema = schema
    return schema


def _validation_errors_as_problems(schema: dict[str, Any]) -> None:
    """FastAPI documents its 422s as HTTPValidationError; this service answers problem+json."""
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema["paths"].values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is not None:
                response["content"] = problem
                response["description"] = "Problem details"


def render() -> str:
    from service.core.settings import Settings
    from service.main import create_app

    return json.dumps(create_app(Settings()).openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    document = render()
    if args.check:
        current = OPENAPI_FILE.read_text() if OPENAPI_FILE.exists() else ""
        if current != document:
            print(f"{OPENAPI_FILE} is stale: run python -m service.openapi", file=sys.stderr)
            return 1
        return 0
    OPENAPI_FILE.parent.mkdir(parents=True, exist_ok=True)
    OPENAPI_FILE.write_text(document)
    print(f"wrote {OPENAPI_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
