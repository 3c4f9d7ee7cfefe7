"""The shape of service/: one route per (path, method), the model routes served by ModelRoute;
no HTTP in the data plane, each package importing only what it may, no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

from fastapi.routing import APIRoute

from service.app import create_app
from service.asgi.routing import ModelRoute
from service.core.settings import Settings
from tests.conftest import ROOT

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


# ---- imports ----------------------------------------------------------------------------------

SERVICE = ROOT / "service"
HTTP = {"fastapi", "starlette", "uvicorn"}
# What each package of service/ may import of service/ (its package docstring says the same).
MAY_IMPORT = {
    "service.core": {"service.core"},
    "service.models": {"service.core", "service.models"},
    "service.asgi": {"service.core", "service.models", "service.asgi"},
    "service.rest": {"service.core", "service.models", "service.asgi", "service.rest"},
    "service.v2": {"service.core", "service.models", "service.asgi", "service.v2"},
    "service.grpc": {"service.core", "service.models", "service.grpc"},
    "service.runtime": {"service.core", "service.asgi", "service.runtime"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SERVICE.rglob("*.py")}


def imports_of(module: str) -> set[str]:
    """Every module an import statement of `module` names (at any depth, TYPE_CHECKING aside)."""
    tree = ast.parse(MODULES[module].read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:  # `from package import module` names the module
                child = f"{node.module}.{alias.name}"
                names.add(child if child in MODULES else node.module)
    return names


GRAPH = {module: imports_of(module) for module in MODULES}


def test_no_module_of_the_data_plane_imports_http_even_indirectly():
    for start in (m for m in MODULES if m.startswith("service.models")):
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            for name in GRAPH[module]:
                assert name.split(".")[0] not in HTTP, f"{start} imports {name} (via {module})"
                if name in MODULES:
                    todo.append(name)


def test_the_data_plane_loads_without_http():
    code = (
        "import sys, service.models.dataplane, service.models.reload, service.models.scores;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi','starlette','uvicorn'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_each_package_imports_only_what_its_docstring_allows():
    for module, names in GRAPH.items():
        package = next((p for p in MAY_IMPORT if module == p or module.startswith(p + ".")), None)
        if package is None:  # service.app, service.openapi, service.__main__: they assemble
            continue
        for name in names:
            if name.startswith("service."):
                allowed = MAY_IMPORT[package]
                assert any(name == a or name.startswith(a + ".") for a in allowed), (
                    f"{module} imports {name}; {package} may import only {sorted(allowed)}"
                )


def test_no_import_cycles():
    internal = {m: {n for n in names if n in MODULES and n != m} for m, names in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(internal[module]):
            if state.get(name) == 1:
                cycle = path[path.index(name) :] + [name]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if name not in state:
                visit(name, [*path, name])
        state[module] = 2

    for module in sorted(internal):
        if module not in state:
            visit(module, [module])


def test_each_package_docstring_says_its_job_and_what_it_may_import():
    for package in MAY_IMPORT:
        doc = ast.get_docstring(ast.parse(MODULES[package].read_text())) or ""
        assert "May import" in doc, f"{package} docstring: {doc!r}"


def test_the_architecture_page_names_every_module_of_the_service():
    page = (ROOT / "docs" / "architecture.md").read_text()
    layout = page[page.index("## Layout") : page.index("### Rules")]
    for module in MODULES:
        leaf = module.rsplit(".", 1)[-1]
        if module == "service" or ".generated." in module:  # generated stubs: their folder
            continue
        package = MODULES[module].name == "__init__.py"
        named = f"{leaf}/" if package else f"{leaf}.py"
        assert named in layout, f"docs/architecture.md does not name {module} ({named})"
