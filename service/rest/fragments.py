"""OpenAPI fragments shared by the routes: request bodies in several media types, errors."""

from __future__ import annotations

from typing import Any

from service.asgi.problems import Problem
from service.asgi.responses import BINARY, binary_outputs
from service.core.media import JPEG, JSON, MULTIPART, NPY, PNG, PROBLEM_JSON


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Responses entries for the given error statuses, all problem+json."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Problem details"}
        for status in statuses
    }


def body(content: dict[str, Any], description: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description, "content": content}}


def json_content(schema: str, examples: dict[str, Any]) -> dict[str, Any]:
    return {
        JSON: {
            "schema": {"$ref": f"#/components/schemas/{schema}"},
            "examples": examples,
        }
    }


def image_body(
    schema: str, examples: dict[str, Any], file_fields: tuple[str, ...] = ("file", "files")
) -> dict[str, Any]:
    multipart = {
        "type": "object",
        "properties": {name: {"type": "array", "items": BINARY} for name in file_fields},
    }
    return body(
        {
            **json_content(schema, examples),
            MULTIPART: {"schema": multipart},
            PNG: {"schema": BINARY},
            JPEG: {"schema": BINARY},
            NPY: {"schema": BINARY},
        },
        "Images as JSON (base64 or nested lists), multipart file fields "
        f"({', '.join(file_fields)}), one raw image, or an .npy array [N,C,H,W] / [N,H,W] / [H,W].",
    )


__all__ = ["BINARY", "binary_outputs", "body", "image_body", "json_content", "problems"]
