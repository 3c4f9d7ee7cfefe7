"""Images in (paths, bytes, PIL images, numpy arrays) and out (PIL images, numpy arrays)."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray

NPY_MEDIA_TYPE = "application/x-npy"


def as_image_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """One image or many. One array reads as the API reads an .npy body: [N,C,H,W] and
    [N,H,W] are batches, [H,W] one image; give a single [C,H,W] image inside a list."""
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim >= 3 else [images]
    if isinstance(images, (str, os.PathLike, bytes, Image.Image)):
        return [images]
    return list(images)


def is_array_batch(images: list[ImageInput]) -> bool:
    """True when every image is an array of the same shape: those travel as one .npy body."""
    return (
        bool(images)
        and all(isinstance(im, np.ndarray) for im in images)
        and len({im.shape for im in images}) == 1
    )


def npy_body(images: list[np.ndarray]) -> bytes:
    """The images stacked into [N,...]; uint8 stays uint8 (the server reads it as 0..255)."""
    batch = np.stack(images)
    if batch.dtype != np.uint8:
        batch = batch.astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, batch, allow_pickle=False)
    return buffer.getvalue()


def upload(image: ImageInput, index: int) -> tuple[str, bytes, str]:
    """(file name, content, media type) of one multipart file field."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        return path.name, path.read_bytes(), _media_type(path.suffix)
    if isinstance(image, bytes):
        return f"image-{index}", image, "application/octet-stream"
    if isinstance(image, Image.Image):
        return f"image-{index}.png", png_bytes(image), "image/png"
    if isinstance(image, np.ndarray):
        return f"image-{index}.png", png_bytes(array_to_pil(image)), "image/png"
    raise TypeError(f"cannot send a {type(image).__name__} as an image")


def array_to_pil(array: np.ndarray) -> Image.Image:
    """[H,W], [C,H,W] (C = 1 or 3) or [H,W,C]; uint8, or floats in 0..1."""
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype != np.uint8:
        array = np.clip(np.rint(np.asarray(array, dtype=np.float64) * 255.0), 0, 255)
    return Image.fromarray(array.astype(np.uint8))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(encoded: str) -> bytes:
    """The PNG bytes of a base64 string, with or without a data-URL prefix."""
    if encoded.startswith("data:"):
        encoded = encoded.split(",", 1)[1]
    return base64.b64decode(encoded)


def pil_from_png(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def pil_to_array(image: Image.Image) -> np.ndarray:
    """float32 [C,H,W] in 0..1, the layout the service uses."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def _media_type(suffix: str) -> str:
    return {
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".bmp": "image/bmp",
        ".gif": "image/gif",
        ".webp": "image/webp",
        ".tif": "image/tiff",
        ".tiff": "image/tiff",
    }.get(suffix.lower(), "application/octet-stream")
