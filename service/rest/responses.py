"""Content negotiation and rendering, for every route alike: JSON, PNG (grid/strip) or .npy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from fastapi import Request
from starlette.responses import Response

from service.asgi.responses import json_response
from service.core.errors import NotAcceptable
from service.core.media import NPY, PNG
from service.models.manifest import ImageSpec
from service.rest.codecs import grid_png, npy_bytes, png_base64, strip_png

ImageEncoding = Literal["png", "array"]
Layout = Literal["grid", "strip"]


def negotiate(request: Request, offered: Sequence[str]) -> str:
    """The offered type the Accept header prefers; the first offered when it says nothing."""
    header = request.headers.get("accept", "").strip()
    if not header:
        return offered[0]
    for wanted in _by_preference(header):
        if wanted == "*/*":
            return offered[0]
        if wanted.endswith("/*"):
            family = wanted[:-1]
            match = next((o for o in offered if o.startswith(family)), None)
        else:
            match = wanted if wanted in offered else None
        if match is not None:
            return match
    raise NotAcceptable(f"cannot answer {header!r}; this route answers {', '.join(offered)}")


def _by_preference(header: str) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranked.append((-quality, position, media.lower()))
    return [media for _, _, media in sorted(ranked)]


def npy_response(array: np.ndarray) -> Response:
    return Response(npy_bytes(array), media_type=NPY)


def images_response(
    media: str,
    payload: dict[str, Any],
    images: np.ndarray,
    spec: ImageSpec,
    *,
    encoding: ImageEncoding = "png",
    layout: Layout = "grid",
) -> Response:
    """The images as one PNG, an .npy array, or JSON `payload` plus `images` and `shape`."""
    if media == PNG:
        picture = strip_png(images, spec) if layout == "strip" else grid_png(images, spec)
        return Response(picture, media_type=PNG)
    if media == NPY:
        return npy_response(images)
    rendered = png_base64(images, spec) if encoding == "png" else images
    return json_response({**payload, "images": rendered, "shape": list(images.shape)})


__all__ = ["images_response", "json_response", "negotiate", "npy_response"]
