"""GET / and its assets: the web page in service/static/.

Served by routes rather than a mount at "/": a mount would answer every path, turning a
wrong method on an API route into the mount's 405 instead of the route's.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return _asset("index.html")


@router.get("/{name:path}")
async def asset(name: str) -> FileResponse:
    return _asset(name)


def page_files() -> list[str]:
    """The names `asset` serves, relative to STATIC_DIR."""
    return [p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]


def _asset(name: str) -> FileResponse:
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise HTTPException(404)
    return FileResponse(path)
