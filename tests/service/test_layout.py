"""The shape of service/: one route per (path, method), the model routes served by ModelRoute."""

from __future__ import annotations

from collections import Counter

from fastapi.routing import APIRoute

from service.app import create_app
from service.asgi.routing import ModelRoute
from service.core.settings import Settings

MODEL_ROUTES = {
    ("/encode", "POST"),
    ("/reconstruct", "POST"),
    ("/decode", "POST"),
    ("/sample", "GET"),
    ("/interpolate", "POST"),
    ("/score", "POST"),
    ("/v2/models/{model}/infer", "POST"),
    ("/v2/models/{model}/versions/{version}/infer", "POST"),
}


def routes_of(app):
    """Every route the app matches requests against, with those of included routers."""
    for route in app.router.routes:
        contexts = getattr(route, "effective_route_contexts", None)  # FastAPI's include layer
        if contexts is None:
            yield route
        else:
            yield from (context.original_route for context in contexts())


def test_each_path_and_method_has_one_route():
    app = create_app(Settings())
    keys = Counter(
        (route.path, method)
        for route in routes_of(app)
        for method in (getattr(route, "methods", None) or {"*"})
    )
    assert [key for key, count in keys.items() if count > 1] == []
    documented = {
        (path, method.upper())
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented <= set(keys), "every documented operation is a route"


def test_the_routes_that_run_models_are_served_by_the_model_route_class():
    routes = {
        (route.path, method): route
        for route in routes_of(create_app(Settings()))
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert set(routes) >= MODEL_ROUTES
    assert {key for key, route in routes.items() if isinstance(route, ModelRoute)} == MODEL_ROUTES
