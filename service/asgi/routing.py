"""The route class of the routes that run models: documented by FastAPI, served without its
per-request machinery.

FastAPI documents these routes (their signatures make the OpenAPI document), but serving them
through its request handler costs more per request than the model: on a small MNIST encoder
its dependency solving, per-request type inspection of query parameters and exit stacks took
about a third of the CPU time of `/encode` (py-spy, docs/service.md). `ModelRoute` is FastAPI's
extension point for that (`APIRouter(route_class=ModelRoute)`, `get_route_handler` overridden,
as MLServer's rest/app.py does): the query string is validated by one pydantic model built
from the same signature (same bounds, same messages, errors located in `query` as FastAPI
locates them), and the endpoint is called directly. One route per (path, method), documented
and served by the same object.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from starlette.datastructures import QueryParams
from starlette.responses import Response

Endpoint = Callable[..., Awaitable[Response]]


class QueryParser:
    """Validates a query string against an endpoint's keyword parameters."""

    def __init__(self, endpoint: Endpoint) -> None:
        hints = typing.get_type_hints(endpoint, include_extras=True)
        parameters = [p for p in inspect.signature(endpoint).parameters.values()]
        if not parameters or parameters[0].name != "request":
            raise TypeError(f"{endpoint.__name__} must take the request first")
        fields = {p.name: (hints[p.name], p.default) for p in parameters[1:]}
        self.model: type[BaseModel] = create_model(
            f"{endpoint.__name__}_query",
            __config__=ConfigDict(populate_by_name=False, protected_namespaces=()),
            **fields,
        )
        self.repeated = {
            field.alias or name
            for name, field in self.model.model_fields.items()
            if _is_list(field.annotation)
        }
        self.names = {field.alias or name for name, field in self.model.model_fields.items()}

    def __call__(self, query: QueryParams) -> dict[str, Any]:
        given = {
            key: query.getlist(key) if key in self.repeated else query[key]
            for key in query
            if key in self.names
        }
        try:
            return dict(self.model.model_validate(given))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            raise RequestValidationError(
                [{**error, "loc": ("query", *error["loc"])} for error in errors]
            ) from exc


def _is_list(annotation: Any) -> bool:
    """list[...] or list[...] | None: a parameter given by repeating it in the query."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = typing.get_args(annotation) if union else (annotation,)
    return any(typing.get_origin(option) is list for option in options)


class ModelRoute(APIRoute):
    """An APIRoute whose handler validates the query with a QueryParser and calls the endpoint
    with the request and those values; everything else (matching, `scope["route"]`, the
    document, exception handling) is FastAPI's."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        endpoint: Endpoint = self.endpoint
        parse = QueryParser(endpoint)

        async def serve(request: Request) -> Response:
            return await endpoint(request, **parse(request.query_params))

        return serve
