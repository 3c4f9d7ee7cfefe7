"""GET /docs (Swagger UI) and /redoc (ReDoc) with every asset served by the service itself: no
CDN, so the API's docs work on a machine or a cluster without internet access.

The files come from two installed packages: Swagger UI from `swagger-ui-bundle-v2` (the
connexion maintainers' bundle, with Swagger UI's Apache-2.0 licence), ReDoc's standalone bundle
from `fastapi-offline`. The pages themselves are FastAPI's, pointed at these files.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
import swagger_ui_bundle
from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, HTMLResponse, Response

DOCS, REDOC, OAUTH2_REDIRECT = "/docs", "/redoc", "/docs/oauth2-redirect"
ASSETS = "/docs/assets"
SWAGGER_UI = Path(str(swagger_ui_bundle.swagger_ui_path))
REDOC_BUNDLE = Path(fastapi_offline.__file__).resolve().parent / "static" / "redoc.standalone.js"
FILES = {
    "swagger-ui-bundle.js": SWAGGER_UI / "swagger-ui-bundle.js",
    "swagger-ui.css": SWAGGER_UI / "swagger-ui.css",
    "favicon-32x32.png": SWAGGER_UI / "favicon-32x32.png",
    "redoc.standalone.js": REDOC_BUNDLE,
}
# ReDoc's footer shows a logo it loads from Redocly's CDN, and hides when it fails to load: it
# gets an empty data URL instead, so that the page asks nothing of the internet.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# No validator badge: Swagger UI would send the document to validator.swagger.io for one.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

router = APIRouter(include_in_schema=False)


def paths() -> list[str]:
    """Every path of the docs: open when the API needs keys (a page must load to ask for one)."""
    return [DOCS, REDOC, OAUTH2_REDIRECT, *(f"{ASSETS}/{name}" for name in FILES)]


@router.get(DOCS)
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT,
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC)
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS}/favicon-32x32.png",
        with_google_fonts=False,
    )


@router.get(ASSETS + "/{name}")
async def asset(name: str) -> Response:
    if name == "redoc.standalone.js":
        return Response(redoc_bundle(), media_type="text/javascript")
    path = FILES.get(name)
    if path is None:
        raise HTTPException(404)
    return FileResponse(path)


@cache
def redoc_bundle() -> bytes:
    return REDOC_BUNDLE.read_bytes().replace(REDOC_LOGO, b"data:,")
