"""Bytes and arrays: decode uploaded images and arrays into the model's shape and range; encode
images as PNG (one, a grid, a strip) or .npy.

Every function here raises BadInput (422) with a readable reason for what it cannot convert.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import struct
import warnings
import zlib

import numpy as np
import pyspng
from PIL import Image, UnidentifiedImageError

from service.core.errors import BadInput
from service.models.checks import check_finite, check_images
from service.models.latents import LATENT_LIMIT
from service.models.manifest import ImageSpec

DATA_URL = re.compile(r"^data:[\w.+/-]*(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)
GAP_GRAY = 96  # between tiles: visible against the black backgrounds of the data sets
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GRAY, PNG_RGB = 0, 2  # IHDR colour types that libspng decodes to exactly Pillow's pixels


# ---- in ----------------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, without decoding it; None for other formats."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def image_from_bytes(data: bytes, spec: ImageSpec, max_pixels: int) -> np.ndarray:
    """A PNG/JPEG/any Pillow image, converted to the model's channels, size and range: [C,H,W]."""
    if not data:
        raise BadInput("the image is empty")
    if _is_plain_png(data, spec):
        try:
            pixels = pyspng.load(data)
        except RuntimeError:
            pass  # broken inside: Pillow names the problem below
        else:
            return _pixels_to_model(pixels, spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size  # read from the header, before any pixel is decoded
            if width * height > max_pixels:
                raise BadInput(
                    f"the image is {width}x{height} = {width * height} pixels; "
                    f"the limit is {max_pixels}"
                )
            image.load()
    except BadInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadInput(f"the image is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise BadInput(
            "the bytes are not an image in a format the service reads (PNG, JPEG, BMP, GIF, "
            "TIFF, WebP, ...)"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:  # a known format, broken inside
        raise BadInput(f"the image could not be decoded: {exc}") from exc
    return _to_model(image, spec)


def _is_plain_png(data: bytes, spec: ImageSpec) -> bool:
    """An 8-bit PNG of the model's size and channels, which libspng decodes 4x faster than
    Pillow to the same pixels; anything else (palette, alpha, 16 bits, resizing) takes Pillow."""
    if png_size(data) != (spec.width, spec.height) or len(data) < 26:
        return False
    bit_depth, colour = data[24], data[25]
    return bit_depth == 8 and colour == (PNG_GRAY if spec.channels == 1 else PNG_RGB)


def _to_model(image: Image.Image, spec: ImageSpec) -> np.ndarray:
    image = _flatten_alpha(image)
    image = image.convert("L" if spec.channels == 1 else "RGB")
    image = letterbox(image, spec.width, spec.height, Image.Resampling.LANCZOS)
    return _pixels_to_model(np.asarray(image), spec)


def letterbox(
    image: Image.Image, width: int, height: int, resample: Image.Resampling
) -> Image.Image:
    """The image scaled to fit width x height, aspect ratio kept, centred on black: the one rule
    for images of another size (the web page's pad shows uploads the same way)."""
    if image.size == (width, height):
        return image
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    fitted = image.resize(size, resample)
    if size == (width, height):
        return fitted
    canvas = Image.new(image.mode, (width, height), 0)
    canvas.paste(fitted, ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas


def _pixels_to_model(pixels: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """uint8 [H,W] or [H,W,C] -> float32 [C,H,W] in the model's range."""
    unit = pixels.astype(np.float32) / 255.0
    unit = unit[None] if unit.ndim == 2 else unit.transpose(2, 0, 1)
    return _to_range(unit, spec)


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Transparent pixels become black, the background of the digit and garment data sets."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        wide = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I") else max(float(wide.max()), 1.0)
        return Image.fromarray(np.clip(wide / top * 255.0, 0, 255).astype(np.uint8), "L")
    return image


def _to_range(unit: np.ndarray, spec: ImageSpec) -> np.ndarray:
    low, high = spec.value_range
    if (low, high) == (0.0, 1.0):
        return unit
    return (unit * (high - low) + low).astype(np.float32)


def image_from_base64(text: str, spec: ImageSpec, max_pixels: int) -> np.ndarray:
    payload = DATA_URL.sub("", text.strip(), count=1)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"the string is not valid base64: {exc}") from exc
    return image_from_bytes(data, spec, max_pixels)


def image_from_nested(values: list, spec: ImageSpec) -> np.ndarray:
    """A nested list [H][W] or [C][H][W] of numbers in the model's range."""
    array = _numeric_array(values, "the nested list")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise BadInput(f"a nested-list image must be [H][W] or [C][H][W]; got {array.ndim} levels")
    return check_images(array[None], spec)[0]


def images_from_npy(data: bytes, spec: ImageSpec, max_images: int) -> np.ndarray:
    """An .npy array [N,C,H,W], [N,H,W] or [H,W]; uint8 is read as 0..255."""
    array = array_from_npy(data)
    if array.dtype == np.uint8:
        array = _to_range(array.astype(np.float32) / 255.0, spec)
    if array.ndim == 2:
        array = array[None, None]
    elif array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise BadInput(
            f"an .npy image batch must be [N,C,H,W], [N,H,W] or [H,W]; got {array.shape}"
        )
    if array.shape[0] > max_images:
        raise BadInput(f"{array.shape[0]} images in one request; the limit is {max_images}")
    return check_images(array, spec)


def array_from_npy(data: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"the body is not a readable .npy array: {exc}") from exc
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise BadInput(f"the .npy array must hold real numbers; got dtype {array.dtype}")
    return array


def latents_from_values(values: object, latent_dim: int, max_rows: int) -> np.ndarray:
    """A [N, latent_dim] float32 array from nested lists or an .npy array."""
    array = values if isinstance(values, np.ndarray) else _numeric_array(values, "latents")
    array = array.astype(np.float32, copy=False)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise BadInput(
            f"latents must be a list of vectors [N][{latent_dim}]; got shape {array.shape}"
        )
    if array.shape[1] != latent_dim:
        raise BadInput(f"latent vectors must have {latent_dim} values; got {array.shape[1]}")
    if array.shape[0] > max_rows:
        raise BadInput(f"{array.shape[0]} latent vectors in one request; the limit is {max_rows}")
    check_finite(array, "latent values")
    peak = float(np.abs(array).max())
    if peak > LATENT_LIMIT:
        raise BadInput(f"latent values must lie within ±{LATENT_LIMIT:g}; got {peak:g}")
    return array


def _numeric_array(values: object, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadInput(f"{what} must be a rectangular nested list of numbers") from exc
    return array


# ---- out ---------------------------------------------------------------------------------------


def to_uint8(images: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """[N,C,H,W] in the model's range -> [N,H,W,C] uint8."""
    low, high = spec.value_range
    unit = np.clip((images - low) / (high - low), 0.0, 1.0)
    return np.rint(unit * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)


def png_bytes(pixels: np.ndarray) -> bytes:
    """One [H,W,C] uint8 image (1 or 3 channels) as an 8-bit PNG: unfiltered rows, zlib level 6.

    Written here rather than by Pillow: for a 28x28 image, Pillow's encoder set-up costs twice
    the compression itself, and /decode answers a PNG per image (docs/service.md). Pillow reads
    these files back to the same pixels (tests/service/test_service_units.py).
    """
    height, width, channels = pixels.shape
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # each row: filter byte 0, pixels
    rows[:, 1:] = pixels.reshape(height, width * channels)
    colour = PNG_GRAY if channels == 1 else PNG_RGB
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_base64(images: np.ndarray, spec: ImageSpec) -> list[str]:
    return [base64.b64encode(png_bytes(p)).decode("ascii") for p in to_uint8(images, spec)]


def grid_png(images: np.ndarray, spec: ImageSpec, columns: int | None = None) -> bytes:
    """All images tiled in a near-square grid (or `columns` wide), 2-pixel gaps, as one PNG."""
    pixels = to_uint8(images, spec)
    count = len(pixels)
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    gap = 2
    _, height, width, channels = pixels.shape
    canvas = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, channels),
        GAP_GRAY,
        dtype=np.uint8,
    )
    for index, tile in enumerate(pixels):
        top, left = divmod(index, columns)
        y, x = top * (height + gap), left * (width + gap)
        canvas[y : y + height, x : x + width] = tile
    return png_bytes(canvas)


def strip_png(images: np.ndarray, spec: ImageSpec) -> bytes:
    """The images side by side in one row, as one PNG."""
    return grid_png(images, spec, columns=len(images))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()
