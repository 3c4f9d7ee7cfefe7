"""Reads image and latent inputs from any accepted request body, for every route alike.

Accepted: multipart/form-data file fields, a raw `image/*` body, an `application/x-npy` body,
or JSON (validated by the route's schema). Anything else is a 415.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import numpy as np
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from service.core.errors import BadInput, UnsupportedMediaType, validation_errors
from service.core.media import IMAGES, JSON, MULTIPART, NPY
from service.core.settings import Settings
from service.models.checks import check_count
from service.models.manifest import ImageSpec
from service.rest.codecs import (
    image_from_base64,
    image_from_bytes,
    image_from_nested,
    images_from_npy,
    png_size,
)
from service.rest.schemas import ImageItem

# Decoding this many pixels (a few dozen MNIST images) costs less than a hop to the thread pool,
# so it stays on the event loop; larger inputs leave it, lest they stall other requests.
INLINE_PIXELS = 32 * 28 * 28

Body = TypeVar("Body", bound=BaseModel)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def unsupported(request: Request, accepted: Sequence[str]) -> UnsupportedMediaType:
    given = media_type(request) or "no Content-Type"
    return UnsupportedMediaType(f"{given} is not accepted here; send one of {', '.join(accepted)}")


async def read_json(request: Request, schema: type[Body]) -> Body:
    try:
        return schema.model_validate_json(await request.body())
    except ValidationError as exc:
        detail, _ = validation_errors(exc.errors(include_url=False, include_input=False))
        raise BadInput(detail) from exc


async def read_files(
    request: Request, fields: Sequence[str], max_files: int
) -> dict[str, list[bytes]]:
    """The uploaded files of a multipart body, by field name."""
    try:
        form = await request.form(max_files=max_files, max_fields=max_files)
    except HTTPException as exc:  # starlette's limits and parse errors
        raise BadInput(f"unreadable multipart body: {exc.detail}") from exc
    files: dict[str, list[bytes]] = {name: [] for name in fields}
    for name, value in form.multi_items():
        if name in files and isinstance(value, UploadFile):
            files[name].append(await value.read())
    await form.close()
    return files


def image_from_item(item: ImageItem, spec: ImageSpec, settings: Settings) -> np.ndarray:
    if isinstance(item, str):
        return image_from_base64(item, spec, settings.max_image_pixels)
    return image_from_nested(item, spec)


async def read_images(
    request: Request,
    spec: ImageSpec,
    settings: Settings,
    schema: type[Body],
    file_fields: Sequence[str] = ("file", "files"),
) -> tuple[np.ndarray, Body | None]:
    """The batch [N,C,H,W] in the model's range, and the JSON body when there was one."""
    kind = media_type(request)
    if kind == JSON:
        body = await read_json(request, schema)
        items = body.images  # type: ignore[attr-defined]
        check_count(len(items), settings)
        # Base64 strings may hide any image size: decode them off the event loop.
        return await run_in_threadpool(_images_from_items, items, spec, settings), body
    if kind == MULTIPART:
        files = await read_files(request, file_fields, settings.max_images + 1)
        uploads = [data for name in file_fields for data in files[name]]
        check_count(len(uploads), settings)
    elif kind.startswith("image/"):
        uploads = [await request.body()]
    elif kind == NPY:
        data = await request.body()
        convert = partial(images_from_npy, data, spec, settings.max_images)
        return await _off_loop_if_large(convert, len(data) // 4), None
    else:
        raise unsupported(request, (JSON, MULTIPART, IMAGES, NPY))
    convert = partial(_images_from_uploads, uploads, spec, settings)
    return await _off_loop_if_large(convert, _pixels_in(uploads)), None


def _pixels_in(uploads: list[bytes]) -> int:
    """Pixels the uploads will decode to, from their PNG headers; unknown counts as large."""
    sizes = [png_size(data) for data in uploads]
    if None in sizes:
        return INLINE_PIXELS + 1
    return sum(width * height for width, height in sizes)  # type: ignore[misc]


async def _off_loop_if_large(convert: Callable[[], np.ndarray], pixels: int) -> np.ndarray:
    if pixels <= INLINE_PIXELS:
        return convert()
    return await run_in_threadpool(convert)


def _images_from_items(items: list[ImageItem], spec: ImageSpec, settings: Settings) -> np.ndarray:
    return np.stack([image_from_item(item, spec, settings) for item in items])


def _images_from_uploads(uploads: list[bytes], spec: ImageSpec, settings: Settings) -> np.ndarray:
    return np.stack([image_from_bytes(data, spec, settings.max_image_pixels) for data in uploads])
