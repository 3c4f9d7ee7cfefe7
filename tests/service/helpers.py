"""Small helpers of the service tests: building request bodies, reading responses."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
from PIL import Image

PROBLEM = "application/problem+json"


def png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    """uint8 [H,W] or [H,W,C] -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def random_digit(seed: int = 0, size: int = 28) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def read_npy(response: httpx.Response) -> np.ndarray:
    assert response.headers["content-type"] == "application/x-npy", response.text[:300]
    return np.load(io.BytesIO(response.content))


def decode_pngs(images: list[str]) -> np.ndarray:
    """base64 PNGs -> float [N,H,W] in 0..1."""
    return np.stack(
        [
            np.asarray(Image.open(io.BytesIO(base64.b64decode(s))), dtype=np.float32) / 255
            for s in images
        ]
    )


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    for word in words:
        assert word.lower() in body["detail"].lower(), body["detail"]
    return body
