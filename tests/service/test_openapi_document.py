"""openapi/openapi.json is what the code generates, and its examples run on the shipped models."""

from __future__ import annotations

import json
import re

from service.app import openapi_document as render
from service.openapi import OPENAPI_FILE


def test_openapi_file_matches_the_code():
    assert OPENAPI_FILE.read_text() == render(), "stale: run `python -m service openapi`"


def test_every_route_documents_its_errors_as_problem_json():
    """...except the Open Inference Protocol's, whose errors are its own {"error": "..."}."""
    document = json.loads(render())
    v2_error = {"application/json": {"schema": {"$ref": "#/components/schemas/V2Error"}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
            if path not in ("/healthz", "/readyz", "/metrics"):
                assert errors, f"{method} {path} documents no errors"
            for code, response in errors.items():
                if (path, code) == ("/v2/health/ready", "400"):  # not ready: {"ready": false}
                    ready = {"$ref": "#/components/schemas/V2ServerReady"}
                    assert response["content"]["application/json"]["schema"] == ready
                elif path.startswith("/v2"):
                    assert response["content"] == v2_error, (path, code)
                    assert operation["tags"] == ["open inference protocol (v2)"]
                elif path != "/readyz":
                    assert "application/problem+json" in response["content"], (path, code)


def json_examples(document: dict):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            for name, example in content.get("application/json", {}).get("examples", {}).items():
                model = re.search(r"model=([\w.-]+)", example["summary"])
                yield method, path, name, example["value"], model.group(1) if model else None


def test_examples_work_against_the_shipped_models(shipped):
    examples = list(json_examples(json.loads(render())))
    assert len(examples) >= 8
    for method, path, name, body, model in examples:
        if "{model}" in path:  # the Open Inference Protocol names its model in the path
            path, params = path.format(model=model, version="1"), {}
        else:
            params = {"model": model} if model else {}
        response = shipped.request(method.upper(), path, json=body, params=params)
        assert response.status_code == 200, (path, name, response.text)
